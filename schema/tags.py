"""The `tagReport` root field and its types."""

import strawberry

from resolvers import tags
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
from schema.types import Tag


@strawberry.type(description="One conversation tag: the conversations carrying it.")
class TagRow:
    tag: Tag = strawberry.field(description="The conversation tag.")
    metrics: Metrics = strawberry.field(
        description="Figures of the conversations with this tag that started in range and match "
        "the filter; messages: sent during the range in conversations with this tag that match "
        "the filter. A conversation with two tags counts in both rows."
    )
    daily: list[MetricsBucket] = strawberry.field(
        description="The tag's metrics for every local day from..to, zero-filled."
    )

    @classmethod
    def of(cls, row: tags.TagRow) -> "TagRow":
        return cls(
            tag=Tag.of(row.tag), metrics=Metrics.of(row.metrics), daily=MetricsBucket.all(row.daily)
        )


@strawberry.type(description="The filter's conversations grouped by conversation tag.")
class TagReport:
    range: DateRange = strawberry.field(description=RANGE_DESCRIPTION)
    rows: list[TagRow] = strawberry.field(
        description="One row per conversation tag carried by at least one conversation that "
        "started in range and matches the filter; most conversations first, then name "
        "(case-insensitive). Untagged conversations have no row."
    )


@strawberry.type
class TagQuery:
    @strawberry.field(
        description="The conversations that started in range and match the filter, grouped by "
        "conversation tag. Only the selected parts are computed.",
        permission_classes=[CanReadReports],
    )
    async def tag_report(self, info: WareportsInfo, filter: FilterArgument) -> TagReport:
        flt, asked, context = report_filter(filter, info), selected(info)["rows"], info.context
        halves = asked.halves(asked["metrics"], asked["daily"]["metrics"])
        parts = asked.parts(tags.TagPart)
        report = await tags.tag_report(
            context.session, context.account_id, flt, parts=parts, halves=halves
        )
        return TagReport(range=DateRange.of(flt), rows=[TagRow.of(row) for row in report.rows])
