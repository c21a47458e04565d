"""The tag report: one row per conversation tag used by the conversations in range."""

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Tag
from models.timing import report_part
from resolvers import entities
from resolvers.filters import Filter
from resolvers.grouped import groups
from resolvers.metrics import BOTH_HALVES, Grouping, Half, Metrics, MetricsBucket


@dataclass(frozen=True)
class TagRow:
    """One conversation tag: the metrics of the conversations carrying it."""

    tag: entities.TagRow
    metrics: Metrics
    daily: tuple[MetricsBucket, ...]


@dataclass(frozen=True)
class TagReport:
    rows: tuple[TagRow, ...]  # most conversations first, then name


class TagPart(Enum):
    """What a tag row holds; each value is its field's name (GraphQL: camelCase)."""

    METRICS = "metrics"
    DAILY = "daily"


TAG_PARTS = frozenset(TagPart)


@report_part("tags")
async def tag_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[TagPart] = TAG_PARTS,
    halves: frozenset[Half] = BOTH_HALVES,
) -> TagReport:
    """Rows for the conversation tags of the conversations that started in range and match the
    filter; a conversation with two tags counts in both rows. Parts not in `parts` come back
    empty (zero metrics, no buckets)."""

    async def labels(ids: list[Any]) -> dict[Any, tuple[entities.TagRow, str]]:
        return await _tags_by_id(session, account_id, ids)

    rows = await groups(
        session,
        account_id,
        flt,
        Grouping.TAG,
        metrics=TagPart.METRICS in parts,
        daily=TagPart.DAILY in parts,
        halves=halves,
        labels=labels,
        # Most conversations, then the name regardless of case, then as written, then the id.
        rank=lambda key, figures, tag: (-figures.conversations, tag[1], tag[0].name, key),
    )
    return TagReport(
        tuple(TagRow(tag=row.label[0], metrics=row.metrics, daily=row.daily) for row in rows)
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
