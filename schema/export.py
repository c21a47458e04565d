"""The `exportReportCsv` mutation: a signed, expiring CSV download link for one report."""

from datetime import datetime

import strawberry
from graphql import GraphQLError

from resolvers.export_links import ExportNotConfigured, create_export
from schema.context import CanExportReports, WareportsInfo
from schema.enums import ReportKind
from schema.filters import ReportFilter
from schema.metrics import report_filter
from schema.scalars import instant


@strawberry.type(description="A CSV download link; anyone holding the URL can GET it until expiry.")
class CsvExport:
    url: str = strawberry.field(
        description="Absolute URL of the CSV on this server; needs no token, signed, bound to "
        "the account, the report and the filter (altered: 403, expired: 410)."
    )
    expires_at: datetime = strawberry.field(description="The instant the URL stops working.")
    filename: str = strawberry.field(
        description='The file name the download carries: "wareports-<report>-<account>-'
        '<from>_<to>.csv".'
    )


@strawberry.type
class ExportMutation:
    @strawberry.mutation(
        description="A signed link to download one report as CSV for this filter (validated "
        "now and again when the link is used); the columns of each kind are listed in the "
        "README. Needs the scope reports:export.",
        permission_classes=[CanExportReports],
    )
    async def export_report_csv(
        self, info: WareportsInfo, report: ReportKind, filter: ReportFilter
    ) -> CsvExport:
        context = info.context
        flt = report_filter(filter, info)
        try:
            made = await create_export(
                context.session, context.settings, context.account_id, report.value, flt
            )
        except ExportNotConfigured as exc:
            raise GraphQLError(str(exc), extensions={"code": "NOT_CONFIGURED"}) from exc
        return CsvExport(url=made.url, expires_at=instant(made.expires_at), filename=made.filename)  # type: ignore[arg-type]
