"""CSV rows of every report kind, built from the reports' own resolvers, and their encoding.

Every figure of SUMMARY, AGENTS, TAGS and WIDGET comes from the function that answers the
GraphQL report (`summary_report`, `agent_report`, `tag_report`, `widget_report`); DETAILS
streams the details report's conversations by pages (`resolvers.export_details`). Only the
presentation is decided here: column names, plain decimals, the formula-injection guard.
"""

import csv
import io
import re
import unicodedata
from collections.abc import AsyncGenerator, Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Account
from models.cells import CLICK_DIMENSIONS
from models.errors import BadInput
from models.metrics import METRICS, Kind
from resolvers import export_details
from resolvers.ads import ad_report
from resolvers.agents import AgentPart, agent_report
from resolvers.filters import Filter, SecondsRange, parse_filter
from resolvers.metrics import Metrics
from resolvers.summary import summary_report
from resolvers.tags import TagPart, tag_report
from resolvers.widget import ClickCount, widget_report

REPORT_KINDS = ("SUMMARY", "AGENTS", "TAGS", "DETAILS", "WIDGET", "ADS")
# A spreadsheet reads a cell as a formula (or a DDE command) when its first non-blank character
# is one of these, full-width forms included (some spreadsheets fold them), or when it starts
# with a control character that can shift what follows into another cell.
FORMULA_SIGNS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
CONTROL_STARTS = ("\t", "\r", "\n")
DETAILS_PAGE_SIZE = export_details.PAGE_SIZE

Row = Sequence[str]
Page = Sequence[Row]

# Every metric of `models.metrics`, in its order; a distribution as one column per bin.
METRIC_COLUMNS = tuple(
    column for metric in METRICS for column in (metric.bin_columns or (metric.name,))
)
DECIMAL_COLUMNS = frozenset(m.name for m in METRICS if m.kind in (Kind.AVERAGE, Kind.PERCENTILE))
FAILURE_COLUMNS = ("failure_code", "failure_title", "failure_messages")
HEATMAP_COLUMNS = ("weekday", "hour")
PRICING_COLUMNS = ("pricing_category", "pricing_country", "pricing_messages", "pricing_billable")
SUMMARY_COLUMNS = (
    "section",
    "start",
    "source",
    *METRIC_COLUMNS,
    *FAILURE_COLUMNS,
    *HEATMAP_COLUMNS,
    *PRICING_COLUMNS,
)
AGENTS_COLUMNS = ("agent_email", "agent_name", "sent_messages", *METRIC_COLUMNS)
TAGS_COLUMNS = ("tag", *METRIC_COLUMNS)
DETAILS_COLUMNS = export_details.COLUMNS
WIDGET_COLUMNS = ("group", "key", "clicks", "conversations")
ADS_COLUMNS = (
    "section",
    "start",
    "source_id",
    "source_type",
    "headline",
    "source_url",
    *METRIC_COLUMNS,
)
# The click groups of the widget report, in file order: (value of `group`, report attribute).
WIDGET_GROUPS = tuple((dimension, f"by_{dimension}") for dimension in CLICK_DIMENSIONS)
COLUMNS: dict[str, tuple[str, ...]] = {
    "SUMMARY": SUMMARY_COLUMNS,
    "AGENTS": AGENTS_COLUMNS,
    "TAGS": TAGS_COLUMNS,
    "DETAILS": DETAILS_COLUMNS,
    "WIDGET": WIDGET_COLUMNS,
    "ADS": ADS_COLUMNS,
}


# -- cells ---------------------------------------------------------------------------------------


def escape_cell(text: str) -> str:
    """Neutralise formula injection: a cell a spreadsheet would evaluate gets a leading `'`."""
    first = text[:1]
    if first not in FORMULA_SIGNS and not first.isspace():
        return text  # most cells: a million-row export checks millions of them
    unblank = text.lstrip()
    if text.startswith(CONTROL_STARTS) or (unblank and unblank[0] in FORMULA_SIGNS):
        return "'" + text
    return text


def text_cell(value: str | None) -> str:
    return "" if value is None else value


def int_cell(value: int | None) -> str:
    return "" if value is None else str(value)


def decimal_cell(value: float | None) -> str:
    """A float as a plain decimal (shortest round-tripping digits, never exponent notation)."""
    if value is None:
        return ""
    return format(Decimal(repr(float(value))), "f")


def metric_cells(metrics: Metrics) -> list[str]:
    cells: list[str] = []
    for metric in METRICS:
        value = getattr(metrics, metric.name)
        if metric.bins is not None:
            cells.extend(int_cell(count) for count in value)
        elif metric.name in DECIMAL_COLUMNS:
            cells.append(decimal_cell(value))
        else:
            cells.append(int_cell(value))
    return cells


# -- the file ------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """`Acme Café, Inc.` -> `acme-cafe-inc`: safe in a file name on every system."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-") or "account"


def export_filename(report: str, account_name: str, flt: Filter) -> str:
    """`wareports-summary-acme-2026-11-01_2026-11-30.csv`."""
    return (
        f"wareports-{report.lower()}-{slug(account_name)}-"
        f"{flt.first_day.isoformat()}_{flt.last_day.isoformat()}.csv"
    )


def encode_page(page: Iterable[Row]) -> bytes:
    """Rows (already escaped) as CSV text, exactly as `csv.writer` writes them (RFC 4180
    quoting, CRLF line ends). Most rows need no quoting and are joined directly, three times
    faster than the writer; the others go through the writer."""
    lines: list[str] = []
    unusual = io.StringIO()
    writer = csv.writer(unusual)
    for row in page:
        line = _plain_line(row)
        if line is None:
            writer.writerow(row)
            line = unusual.getvalue().removesuffix("\r\n")
            unusual.seek(0)
            unusual.truncate()
        lines.append(line)
    if not lines:
        return b""
    lines.append("")  # the last row's line end
    return "\r\n".join(lines).encode("utf-8")


def _plain_line(row: Row) -> str | None:
    """The cells joined by commas when that is what the csv module writes: it quotes a cell
    only when it holds a comma, a double quote, CR or LF, and a lone empty cell. None when the
    writer is needed."""
    try:
        line = ",".join(row)
    except TypeError:  # a cell that is not text: the writer converts it
        return None
    if not line or line.count(",") != len(row) - 1:
        return None
    if '"' in line or "\r" in line or "\n" in line:
        return None
    return line


# -- the filter a link carries -------------------------------------------------------------------


def filter_payload(flt: Filter) -> dict[str, Any]:
    """A validated filter as JSON, its zone resolved, so a link reads the same days forever."""
    return {
        "from": flt.first_day.isoformat(),
        "to": flt.last_day.isoformat(),
        "timezone": flt.timezone,
        "contactTags": list(flt.contact_tags),
        "conversationTags": list(flt.conversation_tags),
        "agentEmails": list(flt.agent_emails),
        "sources": list(flt.sources),
        "weekdays": list(flt.weekdays),
        "hours": list(flt.hours),
        "firstResponseSeconds": _range_payload(flt.first_response_seconds),
        "durationSeconds": _range_payload(flt.duration_seconds),
        "ratings": list(flt.ratings),
        "statuses": list(flt.statuses),
        "answered": flt.answered,
        "slaBreached": flt.sla_breached,
        "adSourceIds": list(flt.ad_source_ids),
        "buttons": [str(button) for button in flt.buttons],
    }


def _range_payload(seconds: SecondsRange | None) -> list[int | None] | None:
    return None if seconds is None else [seconds.low, seconds.high]


def _range_of(payload: Any) -> tuple[int | None, int | None] | None:
    if payload is None:
        return None
    low, high = payload
    return low, high


def filter_of_payload(
    payload: dict[str, Any], max_range_days: int, *, use_aggregates: bool = True
) -> Filter:
    """The filter of a link, validated again (the settings may have changed since it was made)."""
    try:
        return parse_filter(
            from_=date.fromisoformat(payload["from"]),
            to=date.fromisoformat(payload["to"]),
            timezone=str(payload["timezone"]),
            contact_tags=[str(name) for name in payload["contactTags"]],
            conversation_tags=[str(name) for name in payload["conversationTags"]],
            agent_emails=[str(email) for email in payload["agentEmails"]],
            sources=[str(source) for source in payload["sources"]],
            # Links minted before the drill-downs existed carry none.
            weekdays=list(payload.get("weekdays", [])),
            hours=list(payload.get("hours", [])),
            first_response_seconds=_range_of(payload.get("firstResponseSeconds")),
            duration_seconds=_range_of(payload.get("durationSeconds")),
            ratings=list(payload.get("ratings", [])),
            statuses=[str(status) for status in payload.get("statuses", [])],
            answered=payload.get("answered"),
            sla_breached=payload.get("slaBreached"),
            ad_source_ids=[str(value) for value in payload.get("adSourceIds", [])],
            buttons=[str(button) for button in payload.get("buttons", [])],
            account_timezone="UTC",  # unused: the payload always names its zone
            max_range_days=max_range_days,
            use_aggregates=use_aggregates,
        )
    except BadInput:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput("filter", "the link's filter is malformed") from exc


async def account_name(session: AsyncSession, account_id: int) -> str | None:
    """The account's name, or None when it no longer exists."""
    name = await session.scalar(select(Account.name).where(Account.id == account_id))  # type: ignore[arg-type]
    return None if name is None else str(name)


# -- rows per report kind ------------------------------------------------------------------------


async def summary_rows(session: AsyncSession, account_id: int, flt: Filter) -> list[Row]:
    """Daily rows, then weekly rows, then one row per source, then the totals, then one row per
    failure reason, then the 168 hours of the week, then one row per pricing category and
    country (`section`). Each section fills its own columns and leaves the others empty: the
    metric columns in all but `failure` and `pricing`, the failure columns in `failure`,
    `weekday` and `hour` in `heatmap`, the pricing columns in `pricing`."""
    report = await summary_report(session, account_id, flt)

    def row(
        section: str,
        start: str = "",
        source: str = "",
        metrics: Row = (),
        failure: Row = (),
        hour: Row = (),
        pricing: Row = (),
    ) -> Row:
        return [
            section,
            start,
            source,
            *(metrics or [""] * len(METRIC_COLUMNS)),
            *(failure or [""] * len(FAILURE_COLUMNS)),
            *(hour or [""] * len(HEATMAP_COLUMNS)),
            *(pricing or [""] * len(PRICING_COLUMNS)),
        ]

    return [
        *(
            row("daily", day.start.isoformat(), metrics=metric_cells(day.metrics))
            for day in report.daily
        ),
        *(
            row("weekly", week.start.isoformat(), metrics=metric_cells(week.metrics))
            for week in report.weekly
        ),
        *(
            row("source", source=s.source, metrics=metric_cells(s.metrics))
            for s in report.by_source
        ),
        row("total", metrics=metric_cells(report.totals)),
        *(
            row("failure", failure=[str(reason.code), reason.title, str(reason.messages)])
            for reason in report.failure_reasons
        ),
        *(
            row(
                "heatmap",
                metrics=metric_cells(cell.metrics),
                hour=[str(cell.weekday), str(cell.hour)],
            )
            for cell in report.heatmap
        ),
        *(
            row(
                "pricing",
                pricing=[
                    text_cell(price.category),
                    price.country or "",
                    str(price.messages),
                    str(price.billable),
                ],
            )
            for price in report.pricing
        ),
    ]


async def agents_rows(session: AsyncSession, account_id: int, flt: Filter) -> list[Row]:
    """One row per agent, in the report's order (most conversations first, then e-mail)."""
    report = await agent_report(
        session, account_id, flt, parts=frozenset({AgentPart.METRICS, AgentPart.SENT_MESSAGES})
    )
    return [
        [
            row.agent.email,
            text_cell(row.agent.name),
            str(row.sent_messages),
            *metric_cells(row.metrics),
        ]
        for row in report.rows
    ]


async def tags_rows(session: AsyncSession, account_id: int, flt: Filter) -> list[Row]:
    """One row per conversation tag, in the report's order (most conversations first)."""
    report = await tag_report(session, account_id, flt, parts=frozenset({TagPart.METRICS}))
    return [[row.tag.name, *metric_cells(row.metrics)] for row in report.rows]


async def widget_rows(session: AsyncSession, account_id: int, flt: Filter) -> list[Row]:
    """Daily rows, then each click group in the report's order, then the totals (`group`)."""
    report = await widget_report(session, account_id, flt)
    rows: list[Row] = [
        ["daily", day.start.isoformat(), str(day.clicks), str(day.conversations)]
        for day in report.daily
    ]
    for group, attribute in WIDGET_GROUPS:
        counts: Sequence[ClickCount] = getattr(report, attribute)
        rows.extend(
            [group, text_cell(count.key), str(count.clicks), str(count.conversations)]
            for count in counts
        )
    rows.append(["total", "", str(report.clicks), str(report.conversations)])
    return rows


async def ads_rows(session: AsyncSession, account_id: int, flt: Filter) -> list[Row]:
    """Daily rows, one row per ad in the report's order, then the totals (`section`)."""
    report = await ad_report(session, account_id, flt)
    rows: list[Row] = [
        ["daily", day.start.isoformat(), "", "", "", "", *metric_cells(day.metrics)]
        for day in report.daily
    ]
    rows.extend(
        [
            "ad",
            "",
            text_cell(row.ad.source_id),
            text_cell(row.ad.source_type),
            text_cell(row.ad.headline),
            text_cell(row.ad.source_url),
            *metric_cells(row.metrics),
        ]
        for row in report.by_ad
    )
    rows.append(["total", "", "", "", "", "", *metric_cells(report.totals)])
    return rows


REPORT_ROWS = {
    "SUMMARY": summary_rows,
    "AGENTS": agents_rows,
    "TAGS": tags_rows,
    "WIDGET": widget_rows,
    "ADS": ads_rows,
}


async def report_pages(
    session: AsyncSession, account_id: int, report: str, flt: Filter
) -> AsyncGenerator[Page, None]:
    """The rows of one report kind (header excluded), a page at a time: DETAILS by keyset
    pages, the other kinds (a row per day, agent, tag or click group) as one page."""
    if report == "DETAILS":
        # Escaped as they are made, and only the cells that can begin with a formula character:
        # a million rows make checking the others (instants, enum names, counts) measurable.
        pages = export_details.details_pages(
            session, account_id, flt, DETAILS_PAGE_SIZE, escape=escape_cell
        )
        async for page in pages:
            yield page
        return
    rows = await REPORT_ROWS[report](session, account_id, flt)
    yield [[escape_cell(cell) for cell in row] for row in rows]
