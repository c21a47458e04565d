"""Office hours (issue 18): the schedule syntax and the working seconds of an interval, worked
out by hand (overnight shifts, split shifts, weekends, holidays, both daylight-saving changes
in Europe/Paris) and against zoneinfo minute by minute."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from api import accounts
from models.db import transaction
from models.errors import BadInput
from models.office_hours import WEEKDAYS, OfficeHours, parse_office_hours
from tests.conftest import create_test_account, graphql

PARIS = "Europe/Paris"
OFFICE = parse_office_hours("mon-fri 09:00-12:30,13:30-18:00; sat 10:00-14:00")


def at(text: str, zone: str = "UTC") -> int:
    """Local wall-clock time in a zone -> UTC epoch seconds (never ambiguous in these tests)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp())


def test_the_syntax_and_its_canonical_form() -> None:
    assert OFFICE.schedule_text() == (
        "mon 09:00-12:30,13:30-18:00; tue 09:00-12:30,13:30-18:00; "
        "wed 09:00-12:30,13:30-18:00; thu 09:00-12:30,13:30-18:00; "
        "fri 09:00-12:30,13:30-18:00; sat 10:00-14:00"
    )
    wrapped = parse_office_hours("FRI-MON 22:00-06:00", "2026-12-25, 2027-01-01")
    assert [bool(day) for day in wrapped.weekly] == [True, False, False, False, True, True, True]
    assert wrapped.closed_text() == "2026-12-25,2027-01-01"
    assert parse_office_hours("mon,wed 00:00-24:00").schedule_text() == (
        "mon 00:00-24:00; wed 00:00-24:00"
    )
    assert parse_office_hours(wrapped.schedule_text(), wrapped.closed_text()) == wrapped


@pytest.mark.parametrize(
    ("schedule", "closed", "field", "names"),
    [
        ("", "", "schedule", "empty"),
        ("mon-fri 9-18", "", "schedule", "'9-18'"),
        ("monday 09:00-18:00", "", "schedule", "'monday'"),
        ("mon-fri", "", "schedule", "''"),
        ("09:00-18:00", "", "schedule", "'09:00-18:00'"),
        ("mon 09:00-12:00,11:00-13:00", "", "schedule", "mon 09:00-12:00 and mon 11:00-13:00"),
        ("mon 09:00-10:00; mon 11:00-12:00", "", "schedule", "mon is given twice"),
        ("mon,mon 09:00-10:00", "", "schedule", "'mon,mon'"),
        ("mon 10:00-10:00", "", "schedule", "'10:00-10:00'"),
        ("mon 24:00-01:00", "", "schedule", "'24:00-01:00'"),
        ("mon 09:60-10:00", "", "schedule", "'09:60-10:00'"),
        ("mon 09:00-24:30", "", "schedule", "'09:00-24:30'"),
        ("fri 22:00-06:00; sat 05:00-07:00", "", "schedule", "fri 22:00-06:00 and sat 05:00"),
        ("mon 09:00-18:00", "2026-13-01", "closed", "'2026-13-01'"),
    ],
)
def test_bad_syntax_names_the_part(schedule: str, closed: str, field: str, names: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_office_hours(schedule, closed)
    assert refused.value.field == field
    assert names in refused.value.reason


def test_split_shifts_with_a_lunch_break() -> None:
    # Monday 30 November 2026, UTC: 12:00-12:30 and 13:30-14:00.
    assert OFFICE.working_seconds(at("2026-11-30 12:00"), at("2026-11-30 14:00"), "UTC") == 3600
    # Inside the lunch break only: nothing.
    assert OFFICE.working_seconds(at("2026-11-30 12:40"), at("2026-11-30 13:20"), "UTC") == 0
    # The whole Monday: 3 h 30 + 4 h 30.
    assert OFFICE.working_seconds(at("2026-11-30 00:00"), at("2026-12-01 00:00"), "UTC") == 28800


def test_started_outside_office_hours_and_answered_before_they_begin() -> None:
    # Monday 07:00 -> 08:30: before the office opens, no working time at all.
    assert OFFICE.working_seconds(at("2026-11-30 07:00"), at("2026-11-30 08:30"), "UTC") == 0
    # Sunday 10:00 -> Monday 09:05: five minutes of Monday morning.
    assert OFFICE.working_seconds(at("2026-11-29 10:00"), at("2026-11-30 09:05"), "UTC") == 300
    # Friday 19:00 -> Monday 09:05 spans Saturday's 10:00-14:00: 4 h and 5 min.
    assert OFFICE.working_seconds(at("2026-11-27 19:00"), at("2026-11-30 09:05"), "UTC") == 14700


def test_an_overnight_shift_across_midnight() -> None:
    night = parse_office_hours("fri 22:00-06:00")
    # Friday 27 November 23:00 -> Saturday 05:30: all of it.
    assert night.working_seconds(at("2026-11-27 23:00"), at("2026-11-28 05:30"), "UTC") == 23400
    # Friday 21:00 -> Saturday 07:00: the shift, 8 h.
    assert night.working_seconds(at("2026-11-27 21:00"), at("2026-11-28 07:00"), "UTC") == 28800
    # The Saturday part is Saturday's: a closed Saturday cuts the shift at midnight.
    closed = parse_office_hours("fri 22:00-06:00", "2026-11-28")
    assert closed.working_seconds(at("2026-11-27 21:00"), at("2026-11-28 07:00"), "UTC") == 7200


def test_a_weekend_a_holiday_and_the_autumn_change_in_paris() -> None:
    hours = parse_office_hours("mon-fri 09:00-18:00", "2026-10-26")
    # Friday 23 October 17:00 CEST -> Tuesday 27 October 10:00 CET: Friday 17:00-18:00, the
    # weekend (its Sunday has 25 hours), Monday closed, Tuesday 09:00-10:00.
    start, end = at("2026-10-23 17:00", PARIS), at("2026-10-27 10:00", PARIS)
    assert end - start == 3 * 86400 + 18 * 3600  # 3 days 17 hours by the clock, plus the hour
    assert hours.working_seconds(start, end, PARIS) == 7200


def test_a_weekend_and_the_spring_change_in_paris() -> None:
    hours = parse_office_hours("mon-fri 09:00-18:00")
    # Friday 27 March 17:30 CET -> Monday 30 March 09:15 CEST (Sunday has 23 hours).
    start, end = at("2026-03-27 17:30", PARIS), at("2026-03-30 09:15", PARIS)
    assert hours.working_seconds(start, end, PARIS) == 2700


def test_office_hours_over_the_changes_themselves() -> None:
    sunday = parse_office_hours("sun 00:00-24:00")
    week = (at("2026-10-24 12:00", PARIS), at("2026-10-26 12:00", PARIS))
    assert sunday.working_seconds(*week, PARIS) == 25 * 3600  # 25 October: 25 hours
    week = (at("2026-03-28 12:00", PARIS), at("2026-03-30 12:00", PARIS))
    assert sunday.working_seconds(*week, PARIS) == 23 * 3600  # 29 March: 23 hours
    early = parse_office_hours("sun 02:00-03:00")
    # The skipped hour holds no working time; the repeated one counts twice.
    assert (
        early.working_seconds(at("2026-03-28 12:00", PARIS), at("2026-03-30 00:00", PARIS), PARIS)
        == 0
    )
    assert (
        early.working_seconds(at("2026-10-24 12:00", PARIS), at("2026-10-26 00:00", PARIS), PARIS)
        == 7200
    )


def test_empty_or_backwards_intervals_hold_nothing() -> None:
    assert OFFICE.working_seconds(at("2026-11-30 10:00"), at("2026-11-30 10:00"), "UTC") == 0
    assert OFFICE.working_seconds(at("2026-11-30 11:00"), at("2026-11-30 10:00"), "UTC") == 0


ZONES = ["UTC", PARIS, "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
schedules = st.lists(
    st.tuples(
        st.sampled_from(WEEKDAYS),
        st.integers(0, 47).map(lambda half: half * 30),
        st.integers(1, 48).map(lambda half: half * 30),
    ),
    max_size=6,
)


def minute_oracle(hours: OfficeHours, start: int, end: int, zone: str) -> int:
    """Each minute of [start, end) whose local wall time, by zoneinfo, is in office hours."""
    spans = hours.day_spans()
    closed = hours.closed
    total = 0
    for minute in range(start, end, 60):
        local = datetime.fromtimestamp(minute, UTC).astimezone(ZoneInfo(zone))
        second = local.hour * 3600 + local.minute * 60
        if local.date() in closed:
            continue
        if any(low <= second < high for low, high in spans[local.weekday()]):
            total += 60
    return total


@settings(max_examples=60, deadline=None)
@given(
    entries=schedules,
    zone=st.sampled_from(ZONES),
    # Minutes from 2026-03-26 (both changes of the year's spring in Europe and the US are near)
    start=st.integers(0, 60 * 24 * 40),
    length=st.integers(0, 60 * 24 * 4),
    closed=st.sets(st.integers(0, 44), max_size=3),
)
def test_working_seconds_equal_zoneinfo_minute_by_minute(
    entries: list[tuple[str, int, int]], zone: str, start: int, length: int, closed: set[int]
) -> None:
    weekly: dict[str, list[str]] = {}
    for weekday, first, last in entries:
        weekly.setdefault(weekday, []).append(
            f"{first // 60:02d}:{first % 60:02d}-{last // 60:02d}:{last % 60:02d}"
        )
    text = "; ".join(f"{day} {','.join(times)}" for day, times in weekly.items())
    base = at("2026-03-01 00:00")
    days = [datetime.fromtimestamp(base + day * 86400, UTC).date().isoformat() for day in closed]
    try:
        hours = parse_office_hours(text or "mon 09:00-10:00", ",".join(days))
    except BadInput:
        return  # overlapping or empty intervals: refused, tested above
    begin = base + start * 60
    end = begin + length * 60
    assert hours.working_seconds(begin, end, zone) == minute_oracle(hours, begin, end, zone)
    middle = begin + (length // 3) * 60
    assert hours.working_seconds(begin, end, zone) == (
        hours.working_seconds(begin, middle, zone) + hours.working_seconds(middle, end, zone)
    )


OFFICE_HOURS = """{ officeHours { timezone closedDates
    weekly { weekday intervals { from to } } } }"""


async def test_office_hours_through_graphql_per_account(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    paris = await create_test_account(engine, timezone=PARIS)
    other = await create_test_account(engine, timezone="UTC")
    assert await graphql(client, paris, OFFICE_HOURS) == {"data": {"officeHours": None}}
    hours = parse_office_hours("mon-fri 09:00-12:30,13:30-18:00; sun 22:00-06:00", "2026-12-25")
    async with transaction(engine) as session:
        await accounts.set_office_hours(session, paris.id, hours)
    body = await graphql(client, paris, OFFICE_HOURS)
    office = {"from": "09:00", "to": "12:30"}, {"from": "13:30", "to": "18:00"}
    assert body == {
        "data": {
            "officeHours": {
                "timezone": PARIS,
                "closedDates": ["2026-12-25"],
                "weekly": [
                    *({"weekday": day, "intervals": list(office)} for day in range(1, 6)),
                    {"weekday": 6, "intervals": []},
                    {"weekday": 7, "intervals": [{"from": "22:00", "to": "06:00"}]},
                ],
            }
        }
    }
    # Another account sees its own (none); cleared, they are gone.
    assert await graphql(client, other, OFFICE_HOURS) == {"data": {"officeHours": None}}
    async with transaction(engine) as session:
        await accounts.set_office_hours(session, paris.id, None)
    assert await graphql(client, paris, OFFICE_HOURS) == {"data": {"officeHours": None}}
