"""The `widgetReport` root field: WhatsApp button clicks and their attributed conversations."""

from datetime import date
from typing import Any

import strawberry

from resolvers import widget
from resolvers.filters import Filter
from schema.context import CanReadReports, WareportsInfo
from schema.metrics import RANGE_DESCRIPTION, DateRange, FilterArgument, report_filter, selected

CONVERSATIONS = (
    "Conversations attributed to these clicks (the conversation a click's reference code "
    "started or joined) that match the filter's contactTags, conversationTags, agentEmails and "
    "sources; counted with the click, wherever the conversation started."
)


@strawberry.type(description="Clicks and attributed conversations of one group.")
class ClickCount:
    key: str | None = strawberry.field(description="The group's value; null = none given.")
    clicks: int = strawberry.field(description="Clicks of the range with this value.")
    conversations: int = strawberry.field(description=CONVERSATIONS)


@strawberry.type(description="Clicks and attributed conversations of one local day.")
class ClickBucket:
    start: date = strawberry.field(description="The local day.")
    clicks: int = strawberry.field(description="Clicks made during the local day.")
    conversations: int = strawberry.field(description=CONVERSATIONS)


def _groups(description: str) -> Any:
    return strawberry.field(
        description=f"{description} Most clicks first, then key; the null key (none given) "
        "comes last among equal counts."
    )


@strawberry.type(
    description="WhatsApp button clicks whose local day is in range; the filter's lists select "
    "the attributed conversations only, never the clicks."
)
class WidgetReport:
    range: DateRange = strawberry.field(description=RANGE_DESCRIPTION)
    clicks: int = strawberry.field(description="Clicks made from..to (local days).")
    conversations: int = strawberry.field(
        description="Conversations attributed to a click made from..to that match the filter's "
        "contactTags, conversationTags, agentEmails and sources."
    )
    daily: list[ClickBucket] = strawberry.field(
        description="Every local day from..to, ascending, zero-filled."
    )
    by_button: list[ClickCount] = _groups("Grouped by button name.")
    by_referrer: list[ClickCount] = _groups(
        "Grouped by the referring page's URL without its query string."
    )
    by_utm_campaign: list[ClickCount] = _groups("Grouped by utm_campaign as given (trimmed).")
    by_utm_medium: list[ClickCount] = _groups("Grouped by utm_medium as given (trimmed).")
    by_utm_source: list[ClickCount] = _groups("Grouped by utm_source as given (trimmed).")
    by_utm_term: list[ClickCount] = _groups("Grouped by utm_term as given (trimmed).")
    by_utm_content: list[ClickCount] = _groups("Grouped by utm_content as given (trimmed).")

    @classmethod
    def of(cls, report: widget.WidgetReport, flt: Filter) -> "WidgetReport":
        groups = {
            part.value: [
                ClickCount(key=row.key, clicks=row.clicks, conversations=row.conversations)
                for row in getattr(report, part.value)
            ]
            for part in widget.GROUP_KEYS
        }
        return cls(
            range=DateRange.of(flt),
            clicks=report.clicks,
            conversations=report.conversations,
            daily=[
                ClickBucket(start=day.start, clicks=day.clicks, conversations=day.conversations)
                for day in report.daily
            ],
            **groups,
        )


@strawberry.type
class WidgetQuery:
    @strawberry.field(
        description="Clicks on the account's WhatsApp buttons made in range and the "
        "conversations attributed to them: in total, per local day, and grouped by button, "
        "referrer and each UTM field. Only the selected parts are computed.",
        permission_classes=[CanReadReports],
    )
    async def widget_report(self, info: WareportsInfo, filter: FilterArgument) -> WidgetReport:
        flt, asked, context = report_filter(filter, info), selected(info), info.context
        parts = asked.parts(widget.WidgetPart)  # but TOTALS, which is no field:
        if "clicks" in asked or "conversations" in asked:
            parts |= {widget.WidgetPart.TOTALS}
        report = await widget.widget_report(context.session, context.account_id, flt, parts=parts)
        return WidgetReport.of(report, flt)
