"""The ad report: the conversations whose first message came from a click-to-WhatsApp ad (the
`referral` Meta puts on it), in total, per local day and per ad (its source id)."""

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation
from models.timing import report_part
from resolvers.filters import Filter
from resolvers.grouped import groups
from resolvers.metrics import (
    BOTH_HALVES,
    EMPTY,
    Grouping,
    Half,
    Metrics,
    MetricsBucket,
    Period,
    buckets,
    whole_range,
)


@dataclass(frozen=True)
class Ad:
    """What the referrals of one ad said (the latest value of each, as Meta may vary them)."""

    source_id: str
    source_type: str | None
    headline: str | None
    source_url: str | None


@dataclass(frozen=True)
class AdRow:
    ad: Ad
    metrics: Metrics


@dataclass(frozen=True)
class AdReport:
    totals: Metrics
    daily: tuple[MetricsBucket, ...]
    by_ad: tuple[AdRow, ...]  # most conversations first, then source id


class AdPart(Enum):
    """What the report holds; each value is its field's name (GraphQL: camelCase)."""

    TOTALS = "totals"
    DAILY = "daily"
    BY_AD = "by_ad"


AD_PARTS = frozenset(AdPart)


def ads_of(flt: Filter) -> Filter:
    """The filter's conversations that came from an ad (the raw rows answer it)."""
    return replace(flt, ads_only=True)


@report_part("ads")
async def ad_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[AdPart] = AD_PARTS,
    halves: frozenset[Half] = BOTH_HALVES,
) -> AdReport:
    """The parts in `parts` (the others empty) over the conversations that started in range,
    match the filter and came from an ad."""
    ads = ads_of(flt)
    totals = EMPTY
    daily: tuple[MetricsBucket, ...] = ()
    if AdPart.TOTALS in parts:
        totals = await whole_range(session, account_id, ads, halves)
    if AdPart.DAILY in parts:
        daily = await buckets(session, account_id, ads, Period.DAY, halves)
    rows: tuple[AdRow, ...] = ()
    if AdPart.BY_AD in parts:

        async def labels(ids: list[Any]) -> dict[Any, Ad]:
            return await _ads(session, account_id, ids)

        found_rows = await groups(
            session,
            account_id,
            ads,
            Grouping.AD,
            metrics=True,
            daily=False,
            halves=halves,
            labels=labels,
            rank=lambda key, figures, _ad: (-figures.conversations, key),
        )
        rows = tuple(AdRow(ad=row.label, metrics=row.metrics) for row in found_rows)
    return AdReport(totals=totals, daily=daily, by_ad=rows)


async def _ads(session: AsyncSession, account_id: int, ids: list[str]) -> dict[str, Ad]:
    """Each ad's type, headline and URL from its latest conversation (one statement)."""
    latest = (
        select(
            col(Conversation.referral_source_id),
            col(Conversation.referral_source_type),
            col(Conversation.referral_headline),
            col(Conversation.referral_source_url),
            func.row_number()
            .over(
                partition_by=col(Conversation.referral_source_id),
                order_by=(col(Conversation.started_at).desc(), col(Conversation.id).desc()),
            )
            .label("n"),
        )
        .where(
            col(Conversation.account_id) == account_id,
            col(Conversation.referral_source_id).in_(ids),
        )
        .subquery()
    )
    rows = await session.execute(select(*list(latest.c)[:4]).where(latest.c.n == 1))
    return {row[0]: Ad(*row) for row in rows.all()}
