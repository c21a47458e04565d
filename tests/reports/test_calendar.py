"""`models.calendar`: the local day and ISO week of an instant, in Python and in SQL on each
engine, agree with the zone's own calendar (zoneinfo): at daylight-saving transitions, before
1970, on days a zone skipped, and one second either side of local midnight."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import calendar
from models.db import session_factory
from resolvers.buckets import calendar as report_calendar

MONDAY_BEFORE_EPOCH = date(1969, 12, 29)


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


CASES = [
    # 25-hour day: both 02:30 of 2026-10-25 (CEST, then CET) and the midnights around it.
    (
        "Europe/Paris",
        (
            "2026-10-24 21:59:59",
            "2026-10-24 22:00:00",
            "2026-10-25 00:30:00",
            "2026-10-25 01:30:00",
            "2026-10-25 22:59:59",
            "2026-10-25 23:00:00",
        ),
    ),
    # 23-hour day: 2026-03-29 begins at 23:00 UTC the day before and ends at 22:00 UTC.
    ("Europe/Paris", ("2026-03-28 22:59:59", "2026-03-28 23:00:00", "2026-03-29 21:59:59")),
    # Before 1970 in a zone east of UTC: the first local day is 1970-01-01, not day 0 - 1.
    ("Asia/Tokyo", ("1969-12-31 14:59:59", "1969-12-31 15:00:00", "1970-01-01 00:00:00")),
    # West of UTC, the first hours of 1970 UTC are still 1969 locally; and a Monday in 1969.
    ("America/Los_Angeles", ("1970-01-01 07:59:59", "1970-01-01 08:00:00", "1969-06-02 12:00:00")),
    # Years before 1970, far from the epoch (negative weeks too).
    ("America/New_York", ("1950-01-01 04:59:59", "1950-01-01 05:00:00", "1901-12-14 12:00:00")),
    # Half-hour daylight saving, and a quarter-hour offset.
    ("Australia/Lord_Howe", ("2026-04-04 12:59:59", "2026-04-04 13:00:00", "2026-04-05 14:29:59")),
    ("Asia/Kathmandu", ("2026-06-30 18:14:59", "2026-06-30 18:15:00")),
    # Samoa skipped 2011-12-30: the day after 2011-12-29 is 2011-12-31.
    ("Pacific/Apia", ("2011-12-30 09:59:59", "2011-12-30 10:00:00", "2011-12-31 09:59:59")),
    ("UTC", ("1969-12-31 23:59:59", "1970-01-01 00:00:00", "2026-12-31 23:59:59")),
]


def expected(instant: int, zone: str) -> tuple[int, int, int]:
    """zoneinfo's local date of an instant, as (day number, ISO week number, hour of the
    week: 0 = Monday 00:xx .. 167 = Sunday 23:xx)."""
    moment = datetime.fromtimestamp(instant, ZoneInfo(zone))
    local = moment.date()
    return (
        (local - date(1970, 1, 1)).days,
        (local - MONDAY_BEFORE_EPOCH).days // 7,
        local.weekday() * 24 + moment.hour,
    )


@pytest.mark.parametrize(("zone", "instants"), CASES)
async def test_sql_and_python_agree_with_the_zone(
    engine: AsyncEngine, zone: str, instants: tuple[str, ...]
) -> None:
    seconds = [utc(text) for text in instants]
    periods = calendar.zone_periods(zone, [(min(seconds), max(seconds))])
    # The zone's whole history up to the last instant, tested newest first (drill-downs).
    history = calendar.zone_periods(zone, [(calendar.FIRST_PROBE, max(seconds))])
    tz = ZoneInfo(zone)
    async with session_factory(engine)() as session:
        for instant in seconds:
            day, week, hour = expected(instant, zone)
            sql = (
                await session.execute(
                    select(
                        calendar.day_number(literal(instant), periods),
                        calendar.week_number(literal(instant), periods),
                        calendar.week_of_day(literal(day)),
                        calendar.hour_of_week_sql(literal(instant), periods),
                        calendar.hour_of_week_sql(literal(instant), history, newest_first=True),
                    )
                )
            ).one()
            assert tuple(sql) == (day, week, week, hour, hour), (zone, instant)
            assert calendar.local_day(instant, tz) == day, (zone, instant)
            offset = calendar.utc_offset(instant, tz)
            for some in (periods, history):  # ingestion's look-up by periods
                assert calendar.offset_at(instant, some) == offset, (zone, instant)
            assert calendar.hour_of_week(instant, tz) == hour, (zone, instant)
            local = calendar.day_of(day)
            assert calendar.day_number_of(local) == day
            assert calendar.week_number_of(local) == week
            assert calendar.week_monday(week) == local - timedelta(days=local.weekday())


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Paris", date(2026, 3, 29)),  # 23 hours
        ("Europe/Paris", date(2026, 10, 25)),  # 25 hours
        ("America/Sao_Paulo", date(1985, 11, 2)),  # midnight skipped: the day starts at 01:00
        ("Asia/Tokyo", date(1970, 1, 1)),
        ("America/Los_Angeles", date(1969, 12, 31)),
        ("Pacific/Apia", date(2011, 12, 31)),  # the day after 2011-12-29
    ],
)
def test_local_midnight_bounds_the_day(zone: str, day: date) -> None:
    tz = ZoneInfo(zone)
    midnight = calendar.local_midnight(day, tz)
    assert calendar.local_day(midnight, tz) == calendar.day_number_of(day)
    assert calendar.local_day(midnight - 1, tz) < calendar.day_number_of(day)
    assert datetime.fromtimestamp(midnight - 1, tz).date() < day


def test_a_report_range_uses_the_same_offsets() -> None:
    """The reports' calendar of a range holds the zone periods of that range's instants, and
    its SQL is the shared arithmetic (the aggregates are counted with the same)."""
    days = report_calendar(date(2026, 3, 27), date(2026, 4, 2), "Europe/Paris")
    assert days.periods == calendar.zone_periods("Europe/Paris", [(days.start, days.end - 1)])
    assert days.periods == ((days.start, 3600), (utc("2026-03-29 01:00:00"), 7200))
    column = literal(utc("2026-03-29 12:00:00"))
    assert str(days.day_number(column)) == str(calendar.day_number(column, days.periods))
