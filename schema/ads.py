"""The `adReport` root field and its types."""

import strawberry

from resolvers import ads
from schema.context import CanReadReports, WareportsInfo
from schema.metrics import (
    RANGE_DESCRIPTION,
    DateRange,
    FilterArgument,
    Metrics,
    MetricsBucket,
    report_filter,
    selected,
)


@strawberry.type(description="One click-to-WhatsApp ad: the conversations it started.")
class AdRow:
    source_id: str = strawberry.field(description="The ad's id, as Meta's referral gives it.")
    source_type: str | None = strawberry.field(description='"ad" or "post", as Meta gives it.')
    headline: str | None = strawberry.field(description="The ad's headline.")
    source_url: str | None = strawberry.field(description="The ad's or post's URL.")
    metrics: Metrics = strawberry.field(
        description="Figures of the conversations that started in range from this ad and match "
        "the filter; messages: sent in range in them."
    )

    @classmethod
    def of(cls, row: ads.AdRow) -> "AdRow":
        ad = row.ad
        return cls(
            source_id=ad.source_id,
            source_type=ad.source_type,
            headline=ad.headline,
            source_url=ad.source_url,
            metrics=Metrics.of(row.metrics),
        )


@strawberry.type(
    description="The conversations whose first message came from a click-to-WhatsApp ad (a "
    "`referral`), and their messages. Read from the raw rows."
)
class AdReport:
    range: DateRange = strawberry.field(description=RANGE_DESCRIPTION)
    totals: Metrics = strawberry.field(description="The whole range.")
    daily: list[MetricsBucket] = strawberry.field(
        description="Every local day from..to in the filter's zone, ascending, zero-filled."
    )
    by_ad: list[AdRow] = strawberry.field(
        description="One row per ad that started a conversation in range matching the filter, "
        "most conversations first, then source id; type, headline and URL as its latest "
        "conversation's referral gave them."
    )


@strawberry.type
class AdQuery:
    @strawberry.field(
        description="Totals, daily buckets and the split by ad of the conversations that "
        "started in range from a click-to-WhatsApp ad and match the filter. Only the selected "
        "parts are computed.",
        permission_classes=[CanReadReports],
    )
    async def ad_report(self, info: WareportsInfo, filter: FilterArgument) -> AdReport:
        flt, asked, context = report_filter(filter, info), selected(info), info.context
        halves = asked.halves(asked["totals"], asked["daily"]["metrics"], asked["byAd"]["metrics"])
        parts = asked.parts(ads.AdPart)
        report = await ads.ad_report(
            context.session, context.account_id, flt, parts=parts, halves=halves
        )
        return AdReport(
            range=DateRange.of(flt),
            totals=Metrics.of(report.totals),
            daily=MetricsBucket.all(report.daily),
            by_ad=[AdRow.of(row) for row in report.by_ad],
        )
