"""Local days and ISO weeks: the calendar of a range in a zone (23- and 25-hour days, a skipped
midnight), the same buckets through SQL on both engines, and reports computing only the parts
a query selects."""

from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.buckets import calendar
from tests.conftest import TestAccount, counting_statements, graphql
from tests.factories import at, building, inbound


def test_spring_forward_day_has_23_hours() -> None:
    days = calendar(date(2026, 3, 29), date(2026, 3, 29), "Europe/Paris")
    assert days.start == at("2026-03-28 23:00")
    assert days.end == at("2026-03-29 22:00")
    assert days.end - days.start == 23 * 3600
    assert days.periods == ((at("2026-03-28 23:00"), 3600), (at("2026-03-29 01:00"), 7200))


def test_fall_back_day_has_25_hours() -> None:
    days = calendar(date(2026, 10, 25), date(2026, 10, 25), "Europe/Paris")
    assert days.end - days.start == 25 * 3600
    assert days.periods == ((at("2026-10-24 22:00"), 7200), (at("2026-10-25 01:00"), 3600))


def test_a_skipped_midnight_starts_the_day_at_the_transition() -> None:
    # Chile moves from 00:00 -04 straight to 01:00 -03 on 2026-09-06.
    days = calendar(date(2026, 9, 6), date(2026, 9, 6), "America/Santiago")
    assert days.start == at("2026-09-06 04:00")
    assert days.end == at("2026-09-07 03:00")


def test_days_and_clipped_weeks() -> None:
    days = calendar(date(2026, 3, 25), date(2026, 4, 6), "UTC")
    assert days.days[0] == date(2026, 3, 25) and days.days[-1] == date(2026, 4, 6)
    assert len(days.days) == 13
    assert days.weeks == (date(2026, 3, 25), date(2026, 3, 30), date(2026, 4, 6))
    assert days.periods == ((at("2026-03-25 00:00"), 0),)


DAILY = """query ($f: ReportFilter!) {
  summaryReport(filter: $f) {
    daily { start metrics { conversations messages } }
    weekly { start metrics { conversations distinctContacts } }
  }
}"""


async def test_the_25_hour_day_through_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """The account is in UTC; the filter asks for Paris days around the 2026-10-25 change."""
    async with building(engine, account.id) as make:
        contact = await make.contact("+33600000009")
        for instant in (
            "2026-10-24 21:59:59",  # 23:59:59 CEST on the 24th
            "2026-10-24 22:00:00",  # 00:00 CEST: the first second of the 25th
            "2026-10-25 00:30:00",  # 02:30 CEST, before the clocks go back
            "2026-10-25 01:30:00",  # 02:30 CET, the same wall time an hour later
            "2026-10-25 22:59:59",  # 23:59:59 CET: the last second of the 25th
            "2026-10-25 23:00:00",  # 00:00 CET on the 26th
        ):
            await make.conversation(contact, [inbound(at(instant))])
    paris = {"from": "2026-10-24", "to": "2026-10-26", "timezone": "Europe/Paris"}
    body = await graphql(client, account, DAILY, {"f": paris})
    assert body["data"]["summaryReport"] == {
        "daily": [
            {"start": "2026-10-24", "metrics": {"conversations": 1, "messages": 1}},
            {"start": "2026-10-25", "metrics": {"conversations": 4, "messages": 4}},
            {"start": "2026-10-26", "metrics": {"conversations": 1, "messages": 1}},
        ],
        # Saturday 24th and Sunday 25th belong to the week of Monday 19th, clipped.
        "weekly": [
            {"start": "2026-10-24", "metrics": {"conversations": 5, "distinctContacts": 1}},
            {"start": "2026-10-26", "metrics": {"conversations": 1, "distinctContacts": 1}},
        ],
    }
    # The same rows in the account's own zone (UTC).
    body = await graphql(client, account, DAILY, {"f": {"from": "2026-10-24", "to": "2026-10-26"}})
    assert [day["metrics"]["conversations"] for day in body["data"]["summaryReport"]["daily"]] == [
        2,
        4,
        0,
    ]


async def test_only_selected_parts_run_sql(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    engines: tuple[AsyncEngine, AsyncEngine],
    account: TestAccount,
) -> None:
    filters = {"f": {"from": "2026-03-01", "to": "2026-03-31"}}
    # The account's report aggregates answer these filters: token + the aggregates' zone (read
    # once per request) + one statement per part for both halves; distinct contacts add the
    # statement reading the cells' contact sets.
    cases = {
        "summaryReport(filter: $f) { totals { conversations } }": 3,
        "summaryReport(filter: $f) { totals { messages } }": 3,
        "summaryReport(filter: $f) { daily { start metrics { avgRating inboundMessages } } }": 3,
        "summaryReport(filter: $f) { totals { conversations distinctContacts } }": 4,
        """summaryReport(filter: $f) {
             totals { messages conversations } daily { metrics { messages conversations } }
             weekly { metrics { messages conversations } }
             bySource { metrics { messages conversations } } }""": 6,
        # Percentiles: one statement lists the range's values per source and day; the parts
        # take theirs from it (it was one statement per part and value: 12).
        """summaryReport(filter: $f) {
             totals { medianDurationSeconds } daily { metrics { p90FirstResponseSeconds } }
             weekly { metrics { medianFirstResponseSeconds } }
             bySource { metrics { medianFirstResponseBusinessSeconds } } }""": 3,
        # token + zone + rows (the agents' conversation half); no agent, so nothing else
        "agentReport(filter: $f) { rows { agent { email } sentMessages } }": 3,
        # token + zone + one statement per part over the click aggregates
        "widgetReport(filter: $f) { clicks }": 3,
        "widgetReport(filter: $f) { byButton { key } byUtmTerm { key } }": 4,
    }
    await graphql(client, account, "{ agents { id } }")  # the token's last-used update
    for field, expected in cases.items():
        with counting_statements(*engines) as statements:
            body = await graphql(
                client, account, f"query ($f: ReportFilter!) {{ {field} }}", filters
            )
        assert "errors" not in body, body
        assert len(statements) == expected, (field, statements)
