"""Local days and ISO weeks of a report's range in its zone, as exact SQL bucket expressions
(the arithmetic is `models.calendar`'s, shared with the aggregates), and the zone names a
filter may use. Python keeps only the calendar: which instants bound the range, and which date
a day or week number stands for.
"""

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Mapped

from models import calendar as local
from models.errors import BadInput

Instant = ColumnElement[int] | Mapped[int]  # an integer UTC epoch-seconds column or expression


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


@dataclass(frozen=True)
class Calendar:
    """The local days first_day..last_day of a zone: their UTC bounds and bucket expressions."""

    first_day: date
    last_day: date
    zone: str
    start: int  # first instant of first_day, UTC epoch seconds (inclusive)
    end: int  # first instant of the day after last_day (exclusive)
    periods: local.Periods  # (since, UTC offset) in force within [start, end)

    @cached_property
    def days(self) -> tuple[date, ...]:
        """Every local day of the range, ascending."""
        count = (self.last_day - self.first_day).days + 1
        return tuple(self.first_day + timedelta(days=n) for n in range(count))

    @cached_property
    def weeks(self) -> tuple[date, ...]:
        """The first day of each ISO week overlapping the range, clipped to the range."""
        return tuple(sorted({self.week_start(self.week_number_of(day)) for day in self.days}))

    def day_number(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the local day number (days since 1970-01-01) of an instant inside the range."""
        return local.day_number(instant, self.periods)

    def week_number(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the ISO week number (weeks since the Monday 1969-12-29) of an instant."""
        return local.week_number(instant, self.periods)

    def hour_of_week(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the local hour of the ISO week of an instant inside the range (0 = Monday
        00:00-01:00 .. 167 = Sunday 23:00-24:00)."""
        return local.hour_of_week_sql(instant, self.periods)

    def start_hour_of_week(self, instant: Instant) -> ColumnElement[int]:
        """SQL: the local hour of the week of any instant up to the range's end, also before
        the range (a conversation whose messages are in range may have started years
        earlier): the zone's offsets over its whole history, the latest tested first."""
        periods = zone_history(self.zone, self.last_day.year)
        return local.hour_of_week_sql(instant, periods, newest_first=True)

    def day_of(self, number: int) -> date:
        return local.day_of(number)

    @staticmethod
    def day_number_of(day: date) -> int:
        return local.day_number_of(day)

    @staticmethod
    def week_number_of(day: date) -> int:
        return local.week_number_of(day)

    def week_start(self, number: int) -> date:
        """The first day of a week bucket: its Monday, or first_day when the week starts
        before the range."""
        return max(local.week_monday(number), self.first_day)


@lru_cache(maxsize=64)
def zone_history(zone: str, until_year: int) -> local.Periods:
    """The zone's offsets from the first instant the calendar handles to the end of a year
    (probed once per zone and year: about 0.4 s)."""
    if until_year >= date.max.year:
        end = local.LAST_PROBE
    else:
        end = local.local_midnight(date(until_year + 1, 1, 1), ZoneInfo(zone))
    return local.zone_periods(zone, [(local.FIRST_PROBE, end)])


@lru_cache(maxsize=512)
def calendar(first_day: date, last_day: date, zone: str) -> Calendar:
    """The calendar of a range in a zone (cached: the offsets are probed once per range)."""
    tz = ZoneInfo(zone)
    start = local.local_midnight(first_day, tz)
    end = local.local_midnight(last_day + timedelta(days=1), tz)
    periods = local.zone_periods(zone, [(start, end - 1)])
    return Calendar(first_day, last_day, zone, start, end, periods)
