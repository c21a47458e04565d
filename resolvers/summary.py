"""The summary report: totals, daily and weekly buckets, and the split by source."""

from dataclasses import dataclass
from enum import Enum

from sqlmodel.ext.asyncio.session import AsyncSession

from models.timing import report_part
from resolvers.filters import SOURCES, Filter
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
class SourceMetrics:
    source: str  # FLOW | INBOUND | INBOX
    metrics: Metrics


@dataclass(frozen=True)
class SummaryReport:
    totals: Metrics
    daily: tuple[MetricsBucket, ...]
    weekly: tuple[MetricsBucket, ...]
    by_source: tuple[SourceMetrics, ...]  # always FLOW, INBOUND, INBOX


class SummaryPart(Enum):
    """What a summary holds; each value is its field's name (GraphQL: camelCase)."""

    TOTALS = "totals"
    DAILY = "daily"
    WEEKLY = "weekly"
    BY_SOURCE = "by_source"


SUMMARY_PARTS = frozenset(SummaryPart)


@report_part("summary")
async def summary_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[SummaryPart] = SUMMARY_PARTS,
    halves: frozenset[Half] = BOTH_HALVES,
) -> SummaryReport:
    """The summary of the filter's conversations and messages. Parts not in `parts` come back
    empty (zero totals, no buckets) and run no SQL; `halves` limits the statements per part."""
    totals = EMPTY
    daily: tuple[MetricsBucket, ...] = ()
    weekly: tuple[MetricsBucket, ...] = ()
    by_source: tuple[SourceMetrics, ...] = ()
    if SummaryPart.TOTALS in parts:
        found = await compute_metrics(session, account_id, flt, halves=halves)
        totals = found.get((None, None), EMPTY)
    if SummaryPart.DAILY in parts:
        found = await compute_metrics(session, account_id, flt, period=Period.DAY, halves=halves)
        daily = series(found, flt, Period.DAY)
    if SummaryPart.WEEKLY in parts:
        found = await compute_metrics(session, account_id, flt, period=Period.WEEK, halves=halves)
        weekly = series(found, flt, Period.WEEK)
    if SummaryPart.BY_SOURCE in parts:
        found = await compute_metrics(
            session, account_id, flt, grouping=Grouping.SOURCE, halves=halves
        )
        by_source = tuple(
            SourceMetrics(source, found.get((source, None), EMPTY)) for source in SOURCES
        )
    return SummaryReport(totals, daily, weekly, by_source)
