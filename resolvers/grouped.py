"""One skeleton for the reports with a row per group of conversations (by current assignee, by
tag, and the groupings to come): the groups that have conversations in range, labelled and
ranked, with their metrics and daily buckets, computing only the parts asked for."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from resolvers.filters import Filter
from resolvers.metrics import (
    EMPTY,
    Grouping,
    Half,
    Metrics,
    MetricsBucket,
    Period,
    RawReads,
    compute_metrics,
    series,
)

L = TypeVar("L")


@dataclass(frozen=True)
class Group(Generic[L]):
    key: Any  # the grouping's value: an agent id, a tag id
    label: L  # what the report shows for it (`labels`)
    metrics: Metrics  # EMPTY unless asked for
    daily: tuple[MetricsBucket, ...]  # () unless asked for


async def groups(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    grouping: Grouping,
    *,
    metrics: bool,
    daily: bool,
    halves: frozenset[Half],
    labels: Callable[[list[Any]], Awaitable[dict[Any, L]]],
    rank: Callable[[Any, Metrics, L], Any],
) -> list[Group[L]]:
    """The groups with conversations that started in range and match the filter, in `rank`
    order; `labels` names them (one statement for all); `metrics` and `daily` say which parts
    to compute, `halves` which statements of them."""
    # The conversation half is always needed: it decides which groups have a row, and the order.
    wanted = (halves if metrics else frozenset()) | {Half.CONVERSATIONS}
    raw = RawReads()
    totals = await compute_metrics(
        session, account_id, flt, grouping=grouping, halves=wanted, raw=raw
    )
    found = {key: figures for (key, _), figures in totals.items() if figures.conversations}
    named = await labels(list(found)) if found else {}
    ranked = sorted(found, key=lambda key: rank(key, found[key], named[key]))
    buckets = None
    if daily and ranked:
        buckets = await compute_metrics(
            session,
            account_id,
            flt,
            grouping=grouping,
            period=Period.DAY,
            halves=halves,
            raw=raw,
        )
    return [
        Group(
            key=key,
            label=named[key],
            metrics=found[key] if metrics else EMPTY,
            daily=() if buckets is None else series(buckets, flt, Period.DAY, key),
        )
        for key in ranked
    ]
