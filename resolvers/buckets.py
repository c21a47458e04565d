"""Local days and ISO weeks of a report's range in its zone, as exact SQL bucket expressions.

An instant `t` (UTC epoch seconds) falls on local day number `(t + offset(t)) / 86400`, where
`offset(t)` is the zone's UTC offset in force at `t`; 1970-01-01 was a Thursday, so its ISO week
number is `(day + 3) / 7`. Within a report's range the offset changes only at a few known
instants (daylight-saving transitions), so `offset(t)` becomes a small SQL `CASE` of integer
literals: the same integer arithmetic on SQLite and PostgreSQL, exact on 23- and 25-hour days,
and cheap enough to group millions of rows by. Python keeps only the calendar: which instants
bound the range, and which date a day or week number stands for.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, ColumnElement, case, literal_column
from sqlalchemy.orm import Mapped

from models.errors import BadInput

EPOCH = date(1970, 1, 1)
DAY_SECONDS = 86_400
Instant = ColumnElement[int] | Mapped[int]  # an integer UTC epoch-seconds column or expression
# Offsets are probed at this step, then each change is located to the second by bisection.
# Real zones never change their offset twice within six hours.
PROBE_SECONDS = 6 * 3600


def _integer(value: int) -> ColumnElement[int]:
    # Rendered inline, never as a bound parameter: PostgreSQL only accepts a GROUP BY expression
    # that is textually equal to the selected one, and bound parameters get distinct names.
    return literal_column(str(int(value)), BigInteger)


# IANA's geographic areas: a zone is "UTC" or Area/Location ("America/Argentina/Salta").
# Legacy and system names ("EST5EDT", "US/Eastern", "Etc/GMT+5", "Factory", "localtime",
# "posix/Europe/Paris") load too, but mean something else than users think or nothing at all.
CANONICAL_ZONE = re.compile(
    r"UTC|(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific)"
    r"(?:/[A-Za-z0-9_+-]+)+"
)


def require_zone(name: str, field: str) -> str:
    """`name` when it is a known IANA zone named the canonical way; otherwise BadInput naming
    `field`."""
    unknown = BadInput(
        field, f"unknown time zone {name[:100]!r}; use an IANA name such as Europe/Paris"
    )
    if len(name) > 64 or not CANONICAL_ZONE.fullmatch(name):
        raise unknown
    try:
        ZoneInfo(name)
    # A directory ("Europe") or an over-long name surfaces as an OSError, not a lookup error.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise unknown from exc
    return name


def utc_offset(instant: int, zone: ZoneInfo) -> int:
    """The zone's UTC offset in seconds at an instant."""
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """The first instant of a local day (fold=0 maps a midnight skipped by a transition to
    the transition itself, which is then the day's first instant)."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


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


def offset_periods(start: int, end: int, zone: ZoneInfo) -> tuple[tuple[int, int], ...]:
    """`(since, offset)` pairs covering [start, end): the offset in force from `since` on."""
    periods = [(start, utc_offset(start, zone))]
    probe = start
    while probe < end - 1:
        following = min(probe + PROBE_SECONDS, end - 1)
        if utc_offset(following, zone) != periods[-1][1]:
            since = _first_change(probe, following, zone)
            periods.append((since, utc_offset(since, zone)))
            probe = since
        else:
            probe = following
    return tuple(periods)


@dataclass(frozen=True)
class Calendar:
    """The local days first_day..last_day of a zone: their UTC bounds and bucket expressions."""

    first_day: date
    last_day: date
    zone: str
    start: int  # first instant of first_day, UTC epoch seconds (inclusive)
    end: int  # first instant of the day after last_day (exclusive)
    periods: tuple[tuple[int, int], ...]  # (since, UTC offset) in force within [start, end)

    @cached_property
    def days(self) -> tuple[date, ...]:
        """Every local day of the range, ascending."""
        count = (self.last_day - self.first_day).days + 1
        return tuple(self.first_day + timedelta(days=n) for n in range(count))

    @cached_property
    def weeks(self) -> tuple[date, ...]:
        """The first day of each ISO week overlapping the range, clipped to the range."""
        return tuple(sorted({self.week_start(self.week_number_of(day)) for day in self.days}))

    def offset(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the zone's UTC offset at `instant`, for instants inside the range."""
        if len(self.periods) == 1:
            return _integer(self.periods[0][1])
        branches = [
            (instant < _integer(since), _integer(offset))
            for (_, offset), (since, _) in zip(self.periods, self.periods[1:], strict=False)
        ]
        return case(*branches, else_=_integer(self.periods[-1][1]))

    def day_number(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the local day number (days since 1970-01-01) of an instant inside the range."""
        return (instant + self.offset(instant)) // _integer(DAY_SECONDS)

    def week_number(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the ISO week number (weeks since the Monday 1969-12-29) of an instant."""
        return (self.day_number(instant) + _integer(3)) // _integer(7)

    def day_of(self, number: int) -> date:
        return EPOCH + timedelta(days=number)

    @staticmethod
    def day_number_of(day: date) -> int:
        return (day - EPOCH).days

    @staticmethod
    def week_number_of(day: date) -> int:
        return ((day - EPOCH).days + 3) // 7

    def week_start(self, number: int) -> date:
        """The first day of a week bucket: its Monday, or first_day when the week starts
        before the range."""
        return max(EPOCH + timedelta(days=7 * number - 3), self.first_day)


@lru_cache(maxsize=512)
def calendar(first_day: date, last_day: date, zone: str) -> Calendar:
    """The calendar of a range in a zone (cached: the offsets are probed once per range)."""
    tz = ZoneInfo(zone)
    start = local_midnight(first_day, tz)
    end = local_midnight(last_day + timedelta(days=1), tz)
    return Calendar(first_day, last_day, zone, start, end, offset_periods(start, end, tz))
