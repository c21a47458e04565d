"""Office hours (issue 18): the schedule syntax, the working seconds of an interval and the
deadline of a number of working seconds, worked out by hand (overnight shifts, split shifts,
weekends, holidays, both daylight-saving changes in Europe/Paris), the working seconds against
zoneinfo minute by minute and the deadlines against the working seconds."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from api import accounts
from models.db import transaction
from models.errors import BadInput
from models.office_hours import (
    DEADLINE_HORIZON_DAYS,
    WEEKDAYS,
    OfficeHours,
    parse_office_hours,
)
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


def schedule_text(entries: list[tuple[str, int, int]]) -> str:
    """The syntax of drawn (weekday, start minute, end minute) intervals, grouped by weekday."""
    weekly: dict[str, list[str]] = {}
    for weekday, first, last in entries:
        weekly.setdefault(weekday, []).append(
            f"{first // 60:02d}:{first % 60:02d}-{last // 60:02d}:{last % 60:02d}"
        )
    return "; ".join(f"{day} {','.join(times)}" for day, times in weekly.items())


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
    text = schedule_text(entries)
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


PARIS_OFFICE = parse_office_hours("mon-fri 09:00-12:30,13:30-18:00", "2026-12-25")
NOTHING = OfficeHours(((),) * 7)  # no working time in the week: the syntax cannot give it
MINUTES_15 = 15 * 60


def test_a_first_response_deadline_over_a_weekend() -> None:
    # Friday 27 November 17:50: ten minutes before the office closes, five on Monday 09:00.
    start = at("2026-11-27 17:50", PARIS)
    assert PARIS_OFFICE.deadline(start, MINUTES_15, PARIS) == at("2026-11-30 09:05", PARIS)
    # Saturday 28 November 10:00: nothing before Monday 09:00, then fifteen minutes.
    start = at("2026-11-28 10:00", PARIS)
    assert PARIS_OFFICE.deadline(start, MINUTES_15, PARIS) == at("2026-11-30 09:15", PARIS)


def test_a_deadline_over_the_lunch_break_and_the_night() -> None:
    # Monday 30 November 10:00, 8 working hours: 10:00-12:30 (2 h 30) and 13:30-18:00 (4 h 30)
    # are 7 h on Monday; the eighth is Tuesday 09:00-10:00.
    start = at("2026-11-30 10:00", PARIS)
    assert PARIS_OFFICE.deadline(start, 8 * 3600, PARIS) == at("2026-12-01 10:00", PARIS)
    # Started inside a working interval, Monday 11:00, 2 hours: 11:00-12:30, then 13:30-14:00.
    start = at("2026-11-30 11:00", PARIS)
    assert PARIS_OFFICE.deadline(start, 2 * 3600, PARIS) == at("2026-11-30 14:00", PARIS)
    # The end of an interval is the deadline itself, not the start of the next one.
    assert PARIS_OFFICE.deadline(start, 5400, PARIS) == at("2026-11-30 12:30", PARIS)


def test_a_deadline_skips_a_closed_date() -> None:
    # Thursday 24 December 17:00, 2 hours: Thursday 17:00-18:00, Friday 25 closed, the weekend,
    # then Monday 28 December 09:00-10:00.
    start = at("2026-12-24 17:00", PARIS)
    assert PARIS_OFFICE.deadline(start, 7200, PARIS) == at("2026-12-28 10:00", PARIS)


def test_a_deadline_on_an_overnight_shift() -> None:
    night = parse_office_hours("mon-fri 22:00-06:00")
    # Friday 27 November 23:00 UTC, 8 hours: Friday 23:00-24:00 and Saturday 00:00-06:00 (7 h),
    # no shift on Saturday or Sunday night, then Monday 22:00-23:00.
    start = at("2026-11-27 23:00")
    assert night.deadline(start, 8 * 3600, "UTC") == at("2026-11-30 23:00")
    # Sunday 12:00, 30 minutes: Monday 00:00-06:00 belongs to no Sunday shift; Monday 22:30.
    assert night.deadline(at("2026-11-29 12:00"), 1800, "UTC") == at("2026-11-30 22:30")
    # Saturday closed: Friday's shift stops at midnight (1 h), Monday 22:00-24:00 (2 h), then 5
    # hours of Tuesday 00:00-06:00: Tuesday 05:00.
    closed = parse_office_hours("mon-fri 22:00-06:00", "2026-11-28")
    assert closed.deadline(start, 8 * 3600, "UTC") == at("2026-12-01 05:00")


def test_deadlines_over_the_spring_change_in_paris() -> None:
    early = parse_office_hours("sun 01:00-04:00")
    start = at("2026-03-28 12:00", PARIS)
    # Sunday 29 March: 01:00-02:00 CET, 02:00-03:00 skipped, 03:00-04:00 CEST: 2 hours.
    # 90 minutes: the hour before the change, half an hour after it, 03:30 CEST.
    assert early.deadline(start, 5400, PARIS) == at("2026-03-29 03:30", PARIS)
    # 3 hours: the 2 of 29 March, then Sunday 5 April 01:00-02:00.
    assert early.deadline(start, 3 * 3600, PARIS) == at("2026-04-05 02:00", PARIS)
    night = parse_office_hours("sat 22:00-06:00")
    # Saturday 22:00 CET -> Sunday 06:00 CEST is 7 hours: 6 h 30 end Sunday 05:30 CEST, 8 hours
    # Saturday 4 April 23:00 CEST.
    assert night.deadline(start, 6 * 3600 + 1800, PARIS) == at("2026-03-29 05:30", PARIS)
    assert night.deadline(start, 8 * 3600, PARIS) == at("2026-04-04 23:00", PARIS)


def test_deadlines_over_the_autumn_change_in_paris() -> None:
    early = parse_office_hours("sun 01:00-04:00")
    start = at("2026-10-24 12:00", PARIS)
    # Sunday 25 October: 01:00-03:00 CEST (23:00-01:00 UTC), 02:00-04:00 CET (01:00-03:00 UTC):
    # 4 hours. 2 h 30: 02:30 CET, the second 02:30 of the night, 01:30 UTC.
    assert early.deadline(start, 9000, PARIS) == at("2026-10-25 01:30")
    # 4 hours: 04:00 CET, the repeated hour counted twice.
    assert early.deadline(start, 4 * 3600, PARIS) == at("2026-10-25 04:00", PARIS)


def test_no_seconds_is_no_wait() -> None:
    start = at("2026-11-28 10:00", PARIS)  # a Saturday: no office hours
    assert PARIS_OFFICE.deadline(start, 0, PARIS) == start
    assert PARIS_OFFICE.deadline(start, -60, PARIS) == start


def test_no_deadline_beyond_the_horizon() -> None:
    monday = parse_office_hours("mon 09:00-10:00")
    start = at("2026-11-30 00:00")  # a Monday; the horizon ends Friday 30 November 2029 00:00
    # 157 hours: the 157th Monday hour, 156 weeks on, is Monday 26 November 2029 09:00-10:00.
    assert monday.deadline(start, 157 * 3600, "UTC") == at("2029-11-26 10:00")
    # The 158th, Monday 3 December 2029, is beyond the horizon.
    assert monday.deadline(start, 158 * 3600, "UTC") is None
    # No working time in the week at all.
    assert NOTHING.deadline(start, 60, "UTC") is None
    # Every day closed for the three years.
    days = frozenset(date(2026, 11, 30) + timedelta(days=day) for day in range(1100))
    closed = OfficeHours(PARIS_OFFICE.weekly, days)
    assert closed.deadline(at("2026-11-30 08:00", PARIS), 60, PARIS) is None


@settings(max_examples=300, deadline=None)
@given(
    entries=schedules,
    zone=st.sampled_from(ZONES),
    # Both changes of the year in Europe, the US and Lord Howe are within 45 days of these.
    around=st.sampled_from(["2026-03-01 00:00", "2026-09-28 00:00"]),
    start=st.integers(0, 45 * 86400),
    seconds=st.one_of(st.integers(0, 3600), st.integers(0, 4 * 86400)),
    closed=st.sets(st.integers(0, 20), max_size=3),
)
# Found by this test: a stretch of the walk ran on past its window to the next offset change
# (New York's, on Sunday 8 March 07:00 UTC), so that Sunday's half hour counted twice.
@example(
    entries=[("sun", 0, 30)],
    zone="America/New_York",
    around="2026-03-01 00:00",
    start=0,
    seconds=3601,
    closed=set(),
)
def test_the_deadline_is_the_first_instant_with_that_many_working_seconds(
    entries: list[tuple[str, int, int]],
    zone: str,
    around: str,
    start: int,
    seconds: int,
    closed: set[int],
) -> None:
    begin = at(around) + start
    first_day = datetime.fromtimestamp(begin, UTC).date()
    days = [(first_day + timedelta(days=day)).isoformat() for day in closed]
    text = schedule_text(entries)
    try:
        hours = parse_office_hours(text, days) if text else NOTHING
    except BadInput:
        return  # overlapping or empty intervals: refused, tested above
    due = hours.deadline(begin, seconds, zone)
    if due is None:
        horizon = begin + DEADLINE_HORIZON_DAYS * 86400
        assert hours.working_seconds(begin, horizon, zone) < seconds
        return
    assert due >= begin
    assert hours.working_seconds(begin, due, zone) == seconds
    assert due == begin or hours.working_seconds(begin, due - 1, zone) < seconds


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
