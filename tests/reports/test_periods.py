"""Presets, shifts and the range every report echoes (issue 17): dates worked out by hand, with
the clock fixed (`create_app(clock=...)`)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from models.settings import Settings
from resolvers.periods import PeriodShift, RangePreset, preset_range, shifted
from tests.conftest import create_test_account, graphql
from tests.reports.dataset import METRICS, RANGE, build_dataset

PARIS, SAO_PAULO = "Europe/Paris", "America/Sao_Paulo"


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- the arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "preset", "expected"),
    [
        # Sunday 1 March 2026.
        ("2026-03-01", "TODAY", ("2026-03-01", "2026-03-01")),
        ("2026-03-01", "YESTERDAY", ("2026-02-28", "2026-02-28")),
        ("2026-03-01", "LAST_7_DAYS", ("2026-02-23", "2026-03-01")),
        ("2026-03-01", "LAST_30_DAYS", ("2026-01-31", "2026-03-01")),
        ("2026-03-01", "LAST_90_DAYS", ("2025-12-02", "2026-03-01")),
        ("2026-03-01", "LAST_365_DAYS", ("2025-03-02", "2026-03-01")),
        ("2026-03-01", "THIS_WEEK", ("2026-02-23", "2026-03-01")),  # Monday to Sunday
        ("2026-03-01", "LAST_WEEK", ("2026-02-16", "2026-02-22")),
        ("2026-03-01", "THIS_MONTH", ("2026-03-01", "2026-03-01")),
        ("2026-03-01", "LAST_MONTH", ("2026-02-01", "2026-02-28")),
        ("2026-03-01", "THIS_QUARTER", ("2026-01-01", "2026-03-01")),
        ("2026-03-01", "LAST_QUARTER", ("2025-10-01", "2025-12-31")),
        ("2026-03-01", "THIS_YEAR", ("2026-01-01", "2026-03-01")),
        ("2026-03-01", "LAST_YEAR", ("2025-01-01", "2025-12-31")),
        # Thursday 1 January 2026: the week began last year.
        ("2026-01-01", "YESTERDAY", ("2025-12-31", "2025-12-31")),
        ("2026-01-01", "THIS_WEEK", ("2025-12-29", "2026-01-01")),
        ("2026-01-01", "LAST_WEEK", ("2025-12-22", "2025-12-28")),
        ("2026-01-01", "LAST_MONTH", ("2025-12-01", "2025-12-31")),
        ("2026-01-01", "LAST_QUARTER", ("2025-10-01", "2025-12-31")),
        # A leap day, and the month after one.
        ("2028-02-29", "LAST_7_DAYS", ("2028-02-23", "2028-02-29")),
        ("2028-02-29", "THIS_MONTH", ("2028-02-01", "2028-02-29")),
        ("2028-03-15", "LAST_MONTH", ("2028-02-01", "2028-02-29")),
        ("2028-08-15", "LAST_QUARTER", ("2028-04-01", "2028-06-30")),
        ("2028-12-31", "THIS_QUARTER", ("2028-10-01", "2028-12-31")),
    ],
)
def test_presets(today: str, preset: str, expected: tuple[str, str]) -> None:
    assert preset_range(RangePreset(preset), d(today)) == (d(expected[0]), d(expected[1]))


@pytest.mark.parametrize(
    ("today", "preset", "shift", "expected"),
    [
        # As many days right before.
        ("2026-03-01", "LAST_7_DAYS", "PREVIOUS_PERIOD", ("2026-02-16", "2026-02-22")),
        ("2026-03-01", "TODAY", "PREVIOUS_PERIOD", ("2026-02-28", "2026-02-28")),
        ("2026-03-01", "LAST_30_DAYS", "PREVIOUS_PERIOD", ("2026-01-01", "2026-01-30")),
        # The previous calendar unit, clipped to as many days from its start as the range has.
        ("2026-11-15", "THIS_MONTH", "PREVIOUS_PERIOD", ("2026-10-01", "2026-10-15")),
        ("2026-03-31", "THIS_MONTH", "PREVIOUS_PERIOD", ("2026-02-01", "2026-02-28")),  # 31 > 28
        ("2026-03-01", "LAST_MONTH", "PREVIOUS_PERIOD", ("2026-01-01", "2026-01-28")),  # 28 days
        ("2026-03-01", "THIS_QUARTER", "PREVIOUS_PERIOD", ("2025-10-01", "2025-11-29")),  # 60
        ("2026-01-01", "THIS_WEEK", "PREVIOUS_PERIOD", ("2025-12-22", "2025-12-25")),
        ("2026-01-01", "LAST_WEEK", "PREVIOUS_PERIOD", ("2025-12-15", "2025-12-21")),
        ("2028-02-29", "THIS_YEAR", "PREVIOUS_PERIOD", ("2027-01-01", "2027-03-01")),  # 60 days
        ("2028-03-15", "LAST_MONTH", "PREVIOUS_PERIOD", ("2028-01-01", "2028-01-29")),
        # 2025 has 365 days: the leap year before, clipped to as many, ends on 30 December.
        ("2026-06-30", "LAST_YEAR", "PREVIOUS_PERIOD", ("2024-01-01", "2024-12-30")),
        # The same dates a year earlier; 29 February is 28 February.
        ("2028-02-29", "TODAY", "PREVIOUS_YEAR", ("2027-02-28", "2027-02-28")),
        ("2028-02-29", "THIS_YEAR", "PREVIOUS_YEAR", ("2027-01-01", "2027-02-28")),
        ("2026-03-01", "LAST_7_DAYS", "PREVIOUS_YEAR", ("2025-02-23", "2025-03-01")),
        ("2029-03-01", "LAST_YEAR", "PREVIOUS_YEAR", ("2027-01-01", "2027-12-31")),
    ],
)
def test_shifts(today: str, preset: str, shift: str, expected: tuple[str, str]) -> None:
    first, last = preset_range(RangePreset(preset), d(today))
    moved = shifted(first, last, PeriodShift(shift), RangePreset(preset))
    assert moved == (d(expected[0]), d(expected[1]))


def test_an_explicit_range_shifts_by_its_length() -> None:
    first, last = d("2026-03-27"), d("2026-04-02")
    assert shifted(first, last, PeriodShift.PREVIOUS_PERIOD) == (d("2026-03-20"), d("2026-03-26"))
    assert shifted(first, last, PeriodShift.PREVIOUS_YEAR) == (d("2025-03-27"), d("2025-04-02"))


# -- through GraphQL, with a fixed clock -----------------------------------------------------


@dataclass
class FixedClock:
    instant: int = 0

    def __call__(self) -> int:
        return self.instant


@dataclass
class Clocked:
    client: httpx.AsyncClient
    clock: FixedClock
    engine: AsyncEngine


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[Clocked]:
    clock = FixedClock()
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Clocked(client, clock, app.state.engine)


async def ranges(setup: Clocked, who: Any, flt: dict[str, Any]) -> tuple[Any, Any]:
    query = """query ($f: ReportFilter!, $p: ReportFilter!) {
      now: summaryReport(filter: $f) { range { from to timezone } }
      prev: summaryReport(filter: $p) { range { from to timezone } } }"""
    body = await graphql(
        setup.client, who, query, {"f": flt, "p": {**flt, "shift": "PREVIOUS_PERIOD"}}
    )
    assert "errors" not in body, body
    return body["data"]["now"]["range"], body["data"]["prev"]["range"]


@pytest.mark.parametrize(
    ("instant", "zone", "preset", "now", "previous"),
    [
        # 02:30 UTC on 1 March: 03:30 in Paris (1 March), 23:30 the day before in Sao Paulo.
        (
            "2026-03-01 02:30",
            PARIS,
            "THIS_MONTH",
            ("2026-03-01", "2026-03-01"),
            ("2026-02-01", "2026-02-01"),
        ),
        (
            "2026-03-01 02:30",
            SAO_PAULO,
            "THIS_MONTH",
            ("2026-02-01", "2026-02-28"),
            ("2026-01-01", "2026-01-28"),
        ),
        (
            "2026-03-01 02:30",
            SAO_PAULO,
            "TODAY",
            ("2026-02-28", "2026-02-28"),
            ("2026-02-27", "2026-02-27"),
        ),
        # New Year's Eve in Sao Paulo, New Year's Day in Paris.
        (
            "2026-01-01 01:00",
            PARIS,
            "LAST_YEAR",
            ("2025-01-01", "2025-12-31"),
            ("2024-01-01", "2024-12-30"),
        ),
        (
            "2026-01-01 01:00",
            SAO_PAULO,
            "LAST_YEAR",
            ("2024-01-01", "2024-12-31"),
            ("2023-01-01", "2023-12-31"),
        ),
        # Paris moves to summer time at 01:00 UTC on 29 March 2026: 00:30 UTC is 01:30 local,
        # 01:30 UTC is 03:30; both on the 29th, a Sunday.
        (
            "2026-03-29 01:30",
            PARIS,
            "THIS_WEEK",
            ("2026-03-23", "2026-03-29"),
            ("2026-03-16", "2026-03-22"),
        ),
        # 22:30 UTC on 24 October is 00:30 on the 25th in Paris (still UTC+2).
        (
            "2026-10-24 22:30",
            PARIS,
            "YESTERDAY",
            ("2026-10-24", "2026-10-24"),
            ("2026-10-23", "2026-10-23"),
        ),
        # Sao Paulo's last summer time began at midnight on 4 November 2018 (-03:00 -> -02:00):
        # 03:30 UTC is 01:30 local, on the 4th.
        (
            "2018-11-04 03:30",
            SAO_PAULO,
            "LAST_7_DAYS",
            ("2018-10-29", "2018-11-04"),
            ("2018-10-22", "2018-10-28"),
        ),
        # A leap day.
        (
            "2028-02-29 12:00",
            SAO_PAULO,
            "THIS_YEAR",
            ("2028-01-01", "2028-02-29"),
            ("2027-01-01", "2027-03-01"),
        ),
    ],
)
async def test_presets_resolve_in_the_filters_zone_at_the_clocks_instant(
    clocked: Clocked,
    instant: str,
    zone: str,
    preset: str,
    now: tuple[str, str],
    previous: tuple[str, str],
) -> None:
    who = await create_test_account(clocked.engine, "Clocked", PARIS)
    clocked.clock.instant = utc(instant)
    resolved, before = await ranges(clocked, who, {"preset": preset, "timezone": zone})
    assert resolved == {"from": now[0], "to": now[1], "timezone": zone}
    assert before == {"from": previous[0], "to": previous[1], "timezone": zone}


async def test_the_accounts_zone_is_the_default(clocked: Clocked) -> None:
    who = await create_test_account(clocked.engine, "Clocked", SAO_PAULO)
    clocked.clock.instant = utc("2026-03-01 02:30")
    resolved, _ = await ranges(clocked, who, {"preset": "TODAY"})
    assert resolved == {"from": "2026-02-28", "to": "2026-02-28", "timezone": SAO_PAULO}


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"preset": "TODAY", "from": "2026-03-01"}, "filter.preset"),
        ({"preset": "TODAY", "to": "2026-03-01"}, "filter.preset"),
        ({}, "filter.preset"),
        ({"from": "2026-03-01"}, "filter.to"),
        ({"to": "2026-03-01"}, "filter.from"),
        # Shifted before the first day a report can read.
        ({"from": "1970-01-01", "to": "1970-01-05", "shift": "PREVIOUS_PERIOD"}, "filter.from"),
    ],
)
async def test_a_range_needs_a_preset_or_both_dates(
    clocked: Clocked, flt: dict[str, Any], field: str
) -> None:
    who = await create_test_account(clocked.engine)
    clocked.clock.instant = utc("2026-03-01 12:00")
    body = await graphql(
        clocked.client,
        who,
        "query ($f: ReportFilter!) { summaryReport(filter: $f) { range { from } } }",
        {"f": flt},
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field


EVERY_REPORT = f"""query ($f: ReportFilter!) {{
  summaryReport(filter: $f) {{ range {{ from to timezone }} totals {{ ...M }} }}
  agentReport(filter: $f) {{
    range {{ from to timezone }} rows {{ agent {{ email }} metrics {{ ...M }} }} }}
  tagReport(filter: $f) {{
    range {{ from to timezone }} rows {{ tag {{ name }} metrics {{ ...M }} }} }}
  widgetReport(filter: $f) {{ range {{ from to timezone }} clicks conversations }}
  conversationDetails(filter: $f) {{ range {{ from to timezone }} totalCount }}
}}
{METRICS}"""


async def test_a_preset_answers_what_its_dates_answer_in_every_report(clocked: Clocked) -> None:
    """LAST_7_DAYS on 2 April 2026 (Paris) is the dataset's range: every report equals the
    report of the explicit dates, and echoes them; an export link stores them."""
    data = await build_dataset(clocked.engine)
    clocked.clock.instant = utc("2026-04-02 21:59")  # 23:59 in Paris
    by_preset = await graphql(
        clocked.client, data.account, EVERY_REPORT, {"f": {"preset": "LAST_7_DAYS"}}
    )
    by_dates = await graphql(clocked.client, data.account, EVERY_REPORT, {"f": RANGE})
    assert "errors" not in by_preset, by_preset
    assert by_preset == by_dates
    echoed = {"from": RANGE["from"], "to": RANGE["to"], "timezone": PARIS}
    assert {name: report["range"] for name, report in by_preset["data"].items()} == {
        name: echoed for name in by_preset["data"]
    }
    export = """mutation ($f: ReportFilter!) {
      exportReportCsv(report: SUMMARY, filter: $f) { filename } }"""
    made = await graphql(
        clocked.client,
        data.account,
        export,
        {"f": {"preset": "LAST_7_DAYS", "shift": "PREVIOUS_PERIOD"}},
    )
    filename = made["data"]["exportReportCsv"]["filename"]
    assert filename.endswith("-2026-03-20_2026-03-26.csv"), filename
