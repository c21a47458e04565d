"""The `summaryReport` root field and its types."""

import strawberry

from resolvers import summary
from resolvers.filters import Filter
from schema.context import CanReadReports, WareportsInfo
from schema.enums import ConversationSource
from schema.metrics import (
    RANGE_DESCRIPTION,
    DateRange,
    FilterArgument,
    Metrics,
    MetricsBucket,
    report_filter,
    selected,
)


@strawberry.type(description="The metrics of the conversations of one source.")
class SourceMetrics:
    source: ConversationSource = strawberry.field(description="Who started the conversations.")
    metrics: Metrics = strawberry.field(
        description="Figures of the range for the conversations of this source (messages: sent "
        "during the range in conversations of this source)."
    )


@strawberry.type(description="Why WhatsApp failed to deliver outbound messages.")
class FailureReason:
    code: int = strawberry.field(
        description="The error code WhatsApp gave with the failed status (131026, 131049, "
        "...); 0 when it gave none."
    )
    title: str = strawberry.field(
        description="The error's title as WhatsApp gave it (`Unknown error` when none)."
    )
    messages: int = strawberry.field(description="Failed messages with this code and title.")


@strawberry.type(
    description="What WhatsApp bills outbound messages as, per pricing category and recipient "
    "country: counts, no prices."
)
class PricingRow:
    category: str = strawberry.field(
        description="The pricing category of the message's latest status that carried one, as "
        "WhatsApp names it, lower-cased: marketing, utility, authentication, service, ..."
    )
    country: str | None = strawberry.field(
        description="The contact's ISO 3166-1 alpha-2 region, derived from its E.164 number "
        "(`FR` for +33...); null when the number names no region."
    )
    messages: int = strawberry.field(description="Priced messages in this category and country.")
    billable: int = strawberry.field(
        description="Those WhatsApp said it bills: `billable: true`, or, in the per-message "
        "pricing model, `type: regular` (free customer-service and entry-point messages are not)."
    )


@strawberry.type(
    description="One local hour of the week (in the filter's zone) over the whole range: every "
    "Monday 09:00-10:00 of the range together, and so on."
)
class HeatmapCell:
    weekday: int = strawberry.field(description="ISO weekday: 1 = Monday .. 7 = Sunday.")
    hour: int = strawberry.field(description="Local hour, 0 to 23.")
    metrics: Metrics = strawberry.field(
        description="Conversations that started in this local hour of the week, messages sent "
        "in it (in conversations that match the filter). On a daylight-saving day the repeated "
        "hour counts into its hour once per occurrence; the skipped hour has nothing."
    )


@strawberry.type(description="The filter's conversations and messages over the range.")
class SummaryReport:
    range: DateRange = strawberry.field(description=RANGE_DESCRIPTION)
    totals: Metrics = strawberry.field(
        description="The whole range: conversations started from..to, messages sent from..to; "
        "distinctContacts de-duplicated over the whole range."
    )
    daily: list[MetricsBucket] = strawberry.field(
        description="Every local day from..to in the filter's zone, ascending, zero-filled; "
        "daylight-saving days have 23 or 25 hours."
    )
    weekly: list[MetricsBucket] = strawberry.field(
        description="The ISO weeks (Monday to Sunday, local) overlapping the range, clipped to "
        "it: the first bucket starts on `from` when its week starts earlier, the last one ends "
        "on `to`. Computed per week, so distinctContacts is de-duplicated within the week."
    )
    by_source: list[SourceMetrics] = strawberry.field(
        description="One entry per source, always FLOW, INBOUND, INBOX in that order (zeros "
        "for a source the filter leaves out)."
    )
    failure_reasons: list[FailureReason] = strawberry.field(
        description="The failed outbound messages sent in range (those totals.failedMessages "
        "counts) per error code and title, most messages first, then code."
    )
    heatmap: list[HeatmapCell] = strawberry.field(
        description="When conversations start and messages are sent: all 168 local hours of "
        "the week, Monday 00h first, ascending, zero-filled. Read from the raw rows."
    )
    pricing: list[PricingRow] = strawberry.field(
        description="The outbound messages sent in range (in conversations that match the "
        "filter) that a status priced, per pricing category and contact country; a message "
        "counts once however many statuses repeat its pricing. Most messages first, then "
        "category and country (none last). Read from the raw rows."
    )

    @classmethod
    def of(cls, report: summary.SummaryReport, flt: Filter) -> "SummaryReport":
        return cls(
            range=DateRange.of(flt),
            totals=Metrics.of(report.totals),
            daily=MetricsBucket.all(report.daily),
            weekly=MetricsBucket.all(report.weekly),
            by_source=[
                SourceMetrics(
                    source=ConversationSource(row.source), metrics=Metrics.of(row.metrics)
                )
                for row in report.by_source
            ],
            failure_reasons=[
                FailureReason(code=row.code, title=row.title, messages=row.messages)
                for row in report.failure_reasons
            ],
            heatmap=[
                HeatmapCell(weekday=cell.weekday, hour=cell.hour, metrics=Metrics.of(cell.metrics))
                for cell in report.heatmap
            ],
            pricing=[
                PricingRow(
                    category=row.category,
                    country=row.country,
                    messages=row.messages,
                    billable=row.billable,
                )
                for row in report.pricing
            ],
        )


@strawberry.type
class SummaryQuery:
    @strawberry.field(
        description="Totals, daily and weekly buckets and the split by source of the "
        "conversations that started in range and match the filter, and of the messages sent in "
        "range in conversations that match it. Only the selected parts are computed.",
        permission_classes=[CanReadReports],
    )
    async def summary_report(self, info: WareportsInfo, filter: FilterArgument) -> SummaryReport:
        flt, asked, context = report_filter(filter, info), selected(info), info.context
        halves = asked.halves(
            asked["totals"],
            asked["daily"]["metrics"],
            asked["weekly"]["metrics"],
            asked["bySource"]["metrics"],
            asked["heatmap"]["metrics"],
        )
        parts = asked.parts(summary.SummaryPart)
        report = await summary.summary_report(
            context.session, context.account_id, flt, parts=parts, halves=halves
        )
        return SummaryReport.of(report, flt)
