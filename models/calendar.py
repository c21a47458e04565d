"""Local days and ISO weeks of instants in a zone: one arithmetic, in Python and in SQL, for the
reports (`resolvers.buckets`) and the aggregates they read (`ingest.aggregates`).

An instant `t` (UTC epoch seconds) falls on local day number `floor((t + offset(t)) / 86400)`
(days since 1970-01-01), where `offset(t)` is the zone's UTC offset in force at `t`; 1970-01-01
was a Thursday, so the ISO week of day `d` is `floor((d + 3) / 7)` (weeks since Monday
1969-12-29). Within a window of instants the offset changes only at a few known instants
(daylight-saving transitions), so `offset(t)` is a small SQL `CASE` of integer literals over the
zone's `Periods` in that window: the same integer arithmetic on SQLite and PostgreSQL, exact on
23- and 25-hour days, cheap enough to group millions of rows by. SQL divisions truncate toward
zero on both engines, so the dividends are shifted positive first: days before 1970 (an instant
before 1970, or just after it in a zone west of UTC) are floored like Python floors them.
"""

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, case, literal_column

EPOCH = date(1970, 1, 1)
DAY_SECONDS = 86_400
# Offsets are probed at this step, then each change is located to the second by bisection.
# Real zones never change their offset twice within six hours.
PROBE_SECONDS = 6 * 3600
# datetime handles years 1..9999; instants outside get the offset at the nearest bound (their
# local days are beyond anything a report can name).
FIRST_PROBE = -(2**31)
LAST_PROBE = 253_402_041_600  # 9999-12-29T00:00:00Z
# Added before an integer division and taken off after (in days, and in weeks), so that the
# dividend is positive: a floor on both engines. 2**20 days is 2,870 years.
SHIFT_DAYS = 1 << 20
SHIFT_WEEKS = 1 << 18
HOUR_SECONDS = 3_600
WEEK_HOURS = 168
# 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its ISO week.
EPOCH_WEEK_HOUR = 3 * 24

Periods = tuple[tuple[int, int], ...]  # (since, UTC offset in force from `since` on), ascending


def integer(value: int) -> ColumnElement[int]:
    """An integer rendered inline, never as a bound parameter: PostgreSQL only accepts a GROUP
    BY expression textually equal to the selected one, and bound parameters get distinct names."""
    return literal_column(str(int(value)), BigInteger)


# --- Python ------------------------------------------------------------------------------------


def utc_offset(instant: int, zone: ZoneInfo) -> int:
    """The zone's UTC offset in seconds at an instant."""
    moment = datetime.fromtimestamp(min(max(instant, FIRST_PROBE), LAST_PROBE), zone)
    offset = moment.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def offset_at(instant: int, periods: Periods) -> int:
    """The UTC offset in force at `instant` by `periods` (exact inside the windows they were
    made for, `zone_periods`): what `offset_sql` computes in SQL, without asking the zone."""
    index = bisect_right(periods, instant, key=itemgetter(0))
    return periods[max(index - 1, 0)][1]


def local_day(instant: int, zone: ZoneInfo) -> int:
    """The local day number of an instant."""
    return (instant + utc_offset(instant, zone)) // DAY_SECONDS


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """The first instant of a local day (fold=0 maps a midnight skipped by a transition to
    the transition itself, which is then the day's first instant)."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


def hour_of_week(instant: int, zone: ZoneInfo) -> int:
    """The local hour of the ISO week of an instant: 0 = Monday 00:00-01:00 .. 167 = Sunday
    23:00-24:00 (a repeated hour maps to the same hour twice, a skipped hour never)."""
    local_hour = (instant + utc_offset(instant, zone)) // HOUR_SECONDS
    return (local_hour + EPOCH_WEEK_HOUR) % WEEK_HOURS


def day_number_of(day: date) -> int:
    return (day - EPOCH).days


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


def week_number_of(day: date) -> int:
    """The ISO week number of a date (weeks since Monday 1969-12-29)."""
    return (day_number_of(day) + 3) // 7


def week_monday(number: int) -> date:
    return EPOCH + timedelta(days=7 * number - 3)


def zone_periods(zone: str, windows: Iterable[tuple[int, int]]) -> Periods:
    """The zone's UTC offsets as `(since, offset)` pairs, exact for every instant inside one of
    the `(low, high)` windows (inclusive)."""
    tz = ZoneInfo(zone)
    periods: list[tuple[int, int]] = []
    for low, high in sorted(windows):
        _add_period(periods, low, utc_offset(low, tz))
        probe = low
        while probe < high:
            following = min(probe + PROBE_SECONDS, high)
            if utc_offset(following, tz) != periods[-1][1]:
                since = _first_change(probe, following, tz)
                _add_period(periods, since, utc_offset(since, tz))
                probe = since
            else:
                probe = following
    return tuple(periods)


def _add_period(periods: list[tuple[int, int]], since: int, offset: int) -> None:
    if not periods or periods[-1][1] != offset:
        periods.append((since, offset))


def _first_change(low: int, high: int, zone: ZoneInfo) -> int:
    """The first instant in (low, high] whose offset differs from the offset at `low`."""
    before = utc_offset(low, zone)
    while high - low > 1:
        middle = (low + high) // 2
        if utc_offset(middle, zone) == before:
            low = middle
        else:
            high = middle
    return high


# --- SQL ---------------------------------------------------------------------------------------


def offset_sql(instant: Any, periods: Periods, *, newest_first: bool = False) -> ColumnElement[int]:
    """SQL: the UTC offset at an instant inside the periods' windows. `newest_first` tests the
    latest period first: for a zone's whole history, where most instants are recent."""
    if len(periods) == 1:
        return integer(periods[0][1])
    if newest_first:
        latest = [(instant >= integer(since), integer(offset)) for since, offset in periods[:0:-1]]
        return case(*latest, else_=integer(periods[0][1]))
    branches = [
        (instant < integer(since), integer(previous))
        for (_, previous), (since, _) in pairwise(periods)
    ]
    return case(*branches, else_=integer(periods[-1][1]))


def day_number(instant: Any, periods: Periods) -> ColumnElement[int]:
    """SQL: the local day number of an instant inside the periods' windows."""
    return _shifted_local(instant, periods) // integer(DAY_SECONDS) - integer(SHIFT_DAYS)


def hour_number(instant: Any, periods: Periods) -> ColumnElement[int]:
    """SQL: the local hour number of an instant inside the periods' windows (local hours since
    1970-01-01 00:00; the two occurrences of a repeated hour have one number)."""
    return _shifted_local(instant, periods) // integer(HOUR_SECONDS) - integer(SHIFT_DAYS * 24)


def _shifted_local(instant: Any, periods: Periods) -> ColumnElement[int]:
    """SQL: local seconds since the epoch, plus SHIFT_DAYS days (a positive dividend)."""
    return instant + offset_sql(instant, periods) + integer(SHIFT_DAYS * DAY_SECONDS)


def day_of_hour(hour: Any) -> ColumnElement[int]:
    """SQL: the local day number of a local hour number."""
    return (hour + integer(SHIFT_DAYS * 24)) // integer(24) - integer(SHIFT_DAYS)


def hour_of_week_of_hour(hour: Any) -> ColumnElement[int]:
    """SQL: `hour_of_week` of a local hour number (0 = Monday 00:00-01:00)."""
    return (hour + integer(EPOCH_WEEK_HOUR + SHIFT_WEEKS * WEEK_HOURS)) % integer(WEEK_HOURS)


def week_of_day(day: Any) -> ColumnElement[int]:
    """SQL: the ISO week number of a local day number."""
    return (day + integer(3 + 7 * SHIFT_WEEKS)) // integer(7) - integer(SHIFT_WEEKS)


def week_number(instant: Any, periods: Periods) -> ColumnElement[int]:
    """SQL: the ISO week number of an instant inside the periods' windows."""
    return week_of_day(day_number(instant, periods))


def hour_of_week_sql(
    instant: Any, periods: Periods, *, newest_first: bool = False
) -> ColumnElement[int]:
    """SQL: `hour_of_week` of an instant inside the periods' windows (the dividend is shifted
    by whole weeks, so the floor and the remainder are those of Python)."""
    shift = SHIFT_WEEKS * WEEK_HOURS * HOUR_SECONDS
    offset = offset_sql(instant, periods, newest_first=newest_first)
    shifted = instant + offset + integer(shift)
    return (shifted // integer(HOUR_SECONDS) + integer(EPOCH_WEEK_HOUR)) % integer(WEEK_HOURS)
