"""The summary report: totals, daily and weekly buckets, and the split by source."""

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Contact, Conversation, Message
from models.calendar import WEEK_HOURS
from models.enums import Direction
from models.timing import report_part
from resolvers.filters import SOURCES, Filter, conversation_conditions
from resolvers.metrics import (
    BOTH_HALVES,
    EMPTY,
    Grouping,
    Half,
    Metrics,
    MetricsBucket,
    Period,
    RawReads,
    buckets,
    compute_metrics,
    whole_range,
)


@dataclass(frozen=True)
class SourceMetrics:
    source: str  # FLOW | INBOUND | INBOX
    metrics: Metrics


@dataclass(frozen=True)
class FailureReason:
    code: int  # WhatsApp's error code; 0 when it gave none
    title: str
    messages: int


UNKNOWN_FAILURE = FailureReason(0, "Unknown error", 0)


@dataclass(frozen=True)
class PricingRow:
    category: str  # as WhatsApp named it: marketing, utility, authentication, service, ...
    country: str | None  # the contact's ISO 3166 region; None when its number names none
    messages: int
    billable: int


@dataclass(frozen=True)
class HeatmapCell:
    """One local hour of the week over the range: conversations that started in it, messages
    sent in it (every Monday 09:00-10:00 of the range together, ...)."""

    weekday: int  # 1 = Monday .. 7 = Sunday
    hour: int  # 0..23
    metrics: Metrics


@dataclass(frozen=True)
class SummaryReport:
    totals: Metrics
    daily: tuple[MetricsBucket, ...]
    weekly: tuple[MetricsBucket, ...]
    by_source: tuple[SourceMetrics, ...]  # always FLOW, INBOUND, INBOX
    failure_reasons: tuple[FailureReason, ...] = ()  # most messages first, then code
    heatmap: tuple[HeatmapCell, ...] = ()  # all 168 hours of the week, Monday 00h first
    pricing: tuple[PricingRow, ...] = ()  # most messages first, then category and country


class SummaryPart(Enum):
    """What a summary holds; each value is its field's name (GraphQL: camelCase)."""

    TOTALS = "totals"
    DAILY = "daily"
    WEEKLY = "weekly"
    BY_SOURCE = "by_source"
    FAILURE_REASONS = "failure_reasons"
    HEATMAP = "heatmap"
    PRICING = "pricing"


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
    failures: tuple[FailureReason, ...] = ()
    heatmap: tuple[HeatmapCell, ...] = ()
    pricing: tuple[PricingRow, ...] = ()
    raw = RawReads()
    if SummaryPart.TOTALS in parts:
        totals = await whole_range(session, account_id, flt, halves, raw)
    if SummaryPart.DAILY in parts:
        daily = await buckets(session, account_id, flt, Period.DAY, halves, raw)
    if SummaryPart.WEEKLY in parts:
        weekly = await buckets(session, account_id, flt, Period.WEEK, halves, raw)
    if SummaryPart.BY_SOURCE in parts:
        found = await compute_metrics(
            session,
            account_id,
            flt,
            grouping=Grouping.SOURCE,
            halves=halves,
            raw=raw,
        )
        by_source = tuple(
            SourceMetrics(source, found.get((source, None), EMPTY)) for source in SOURCES
        )
    if SummaryPart.FAILURE_REASONS in parts:
        failures = await failure_reasons(session, account_id, flt)
    if SummaryPart.HEATMAP in parts:
        found = await compute_metrics(
            session, account_id, flt, period=Period.HOUR_OF_WEEK, halves=halves
        )
        heatmap = tuple(
            HeatmapCell(hour // 24 + 1, hour % 24, found.get((None, hour), EMPTY))
            for hour in range(WEEK_HOURS)
        )
    if SummaryPart.PRICING in parts:
        pricing = await pricing_rows(session, account_id, flt)
    return SummaryReport(totals, daily, weekly, by_source, failures, heatmap, pricing)


def _outbound_in_range(account_id: int, flt: Filter) -> list[Any]:
    """The outbound messages sent in range in conversations that match the filter (joined)."""
    days = flt.calendar
    return [
        col(Message.account_id) == account_id,
        col(Message.sent_at) >= days.start,
        col(Message.sent_at) < days.end,
        col(Message.direction) == Direction.OUTBOUND,
        *conversation_conditions(account_id, flt),
    ]


async def pricing_rows(
    session: AsyncSession, account_id: int, flt: Filter
) -> tuple[PricingRow, ...]:
    """The outbound messages sent in range, in conversations that match the filter, that a
    status priced, per pricing category and the contact's country: how many, how many billable;
    most messages first, then category and country (no country last)."""
    category, country = col(Message.pricing_category), col(Contact.country)
    billable = func.count().filter(col(Message.billable).is_(True))
    rows = await session.execute(
        select(category, country, func.count(), billable)
        .select_from(Message)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .join(
            Contact,
            (col(Contact.account_id) == col(Conversation.account_id))
            & (col(Contact.id) == col(Conversation.contact_id)),
        )
        .where(category.is_not(None), *_outbound_in_range(account_id, flt))
        .group_by(category, country)
    )
    found = [PricingRow(*row) for row in rows.all()]
    return tuple(
        sorted(found, key=lambda r: (-r.messages, r.category, r.country is None, r.country or ""))
    )


async def failure_reasons(
    session: AsyncSession, account_id: int, flt: Filter
) -> tuple[FailureReason, ...]:
    """The failed outbound messages sent in range, in conversations that match the filter (the
    messages `failedMessages` counts), per error code and title WhatsApp gave: most messages
    first, then code and title."""
    code, title = col(Message.error_code), col(Message.error_title)
    rows = await session.execute(
        select(code, title, func.count())
        .select_from(Message)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .where(col(Message.status) == "failed", *_outbound_in_range(account_id, flt))
        .group_by(code, title)
    )
    counted: dict[tuple[int, str], int] = {}
    for error_code, error_title, messages in rows.all():
        if error_code is None and not error_title:
            key = (UNKNOWN_FAILURE.code, UNKNOWN_FAILURE.title)
        else:
            key = (error_code or 0, error_title or "")
        counted[key] = counted.get(key, 0) + messages
    found = [FailureReason(code, title, messages) for (code, title), messages in counted.items()]
    return tuple(sorted(found, key=lambda r: (-r.messages, r.code, r.title)))
