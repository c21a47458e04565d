"""The tag report: one row per conversation tag used by the conversations in range."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Tag
from models.timing import report_part
from resolvers import entities
from resolvers.filters import Filter
from resolvers.metrics import (
    BOTH_HALVES,
    EMPTY,
    Grouping,
    Half,
    Metrics,
    MetricsBucket,
    Period,
    compute_metrics,
    series,
)


@dataclass(frozen=True)
class TagRow:
    """One conversation tag: the metrics of the conversations carrying it."""

    tag: entities.TagRow
    metrics: Metrics
    daily: tuple[MetricsBucket, ...]


@dataclass(frozen=True)
class TagReport:
    rows: tuple[TagRow, ...]  # most conversations first, then name


TAG_PARTS = frozenset({"metrics", "daily"})


@report_part("tags")
async def tag_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[str] = TAG_PARTS,
    halves: frozenset[Half] = BOTH_HALVES,
) -> TagReport:
    """Rows for the conversation tags of the conversations that started in range and match the
    filter; a conversation with two tags counts in both rows. Parts not in `parts` come back
    empty (zero metrics, no buckets)."""
    # The conversation half is always needed: it decides which tags have a row, and the order.
    wanted = (halves if "metrics" in parts else frozenset()) | {Half.CONVERSATIONS}
    totals = await compute_metrics(session, account_id, flt, grouping=Grouping.TAG, halves=wanted)
    found = {key: metrics for (key, _), metrics in totals.items() if metrics.conversations}
    tags = await _tags_by_id(session, account_id, list(found)) if found else {}
    ranked = sorted(
        found, key=lambda key: (-found[key].conversations, tags[key][1], tags[key][0].name, key)
    )
    daily = None
    if "daily" in parts and ranked:
        daily = await compute_metrics(
            session, account_id, flt, grouping=Grouping.TAG, period=Period.DAY, halves=halves
        )
    return TagReport(
        tuple(
            TagRow(
                tag=tags[key][0],
                metrics=found[key] if "metrics" in parts else EMPTY,
                daily=() if daily is None else series(daily, flt, Period.DAY, key),
            )
            for key in ranked
        )
    )


async def _tags_by_id(
    session: AsyncSession, account_id: int, ids: list[int]
) -> dict[int, tuple[entities.TagRow, str]]:
    """Each tag with its lower-cased name, which orders rows regardless of case."""
    rows = await session.execute(
        select(Tag.id, col(Tag.name), col(Tag.name_key)).where(
            col(Tag.account_id) == account_id,
            col(Tag.id).in_(ids),
        )
    )
    return {tag_id: (entities.TagRow(tag_id, name), key) for tag_id, name, key in rows.all()}
