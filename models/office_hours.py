"""Office hours: a weekly schedule in the account's zone, with closed dates, and the working
seconds of an interval of instants (what business-time metrics measure), and the deadline that
a number of working seconds from an instant makes (a first response within 15 working minutes).

Syntax (`wareports account set-office-hours --schedule`): parts separated by `;`, each a set of
weekdays and its intervals, `mon-fri 09:00-12:30,13:30-18:00; sat 10:00-14:00`. Weekdays are
`mon tue wed thu fri sat sun`, alone, as ranges (`mon-fri`, `fri-mon` wraps) or listed with
commas (`mon,wed,fri`); each weekday is given in one part at most. An interval is `HH:MM-HH:MM`
from 00:00 to 24:00; one whose end is not after its start crosses midnight (`22:00-06:00` on
Friday is Friday 22:00-24:00 and Saturday 00:00-06:00). A weekday's intervals may not overlap
(nor the part of the day before's overnight interval that falls on it).

Office hours are a set of instants: those whose local wall-clock time, in the zone, falls in an
interval of its local date's weekday, that date not being a closed date (a closed date has no
office hours from 00:00 to 24:00, whichever day an overnight interval started). So a local hour
that a daylight-saving change skips holds no working time, and one it repeats counts twice:
the working seconds of an interval of instants are exact on 23- and 25-hour days.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from itertools import pairwise

from models.calendar import DAY_SECONDS, Periods, day_number_of, zone_periods
from models.errors import BadInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTE = 60
DAY_MINUTES = 24 * 60
# A deadline is looked for within three years (a leap day included) of its start instant.
DEADLINE_HORIZON_DAYS = 1096
_TIME = re.compile(r"^(\d{2}):(\d{2})$")


@dataclass(frozen=True, order=True)
class Interval:
    """Minutes from local midnight: `start` in 0..1439, `end` in 1..1440 (1440: midnight after).
    `end <= start`: crosses midnight into the next weekday."""

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def text(self) -> tuple[str, str]:
        return _clock(self.start), _clock(self.end)


@dataclass(frozen=True)
class OfficeHours:
    """`weekly[0]` is Monday's intervals as given (in order), `weekly[6]` Sunday's."""

    weekly: tuple[tuple[Interval, ...], ...]
    closed: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        assert len(self.weekly) == 7
        _check_overlaps(self.weekly)

    def schedule_text(self) -> str:
        """The canonical syntax of the weekly schedule (one part per weekday with hours)."""
        parts = []
        for weekday, intervals in enumerate(self.weekly):
            if intervals:
                times = ",".join("-".join(interval.text()) for interval in intervals)
                parts.append(f"{WEEKDAYS[weekday]} {times}")
        return "; ".join(parts)

    def closed_text(self) -> str:
        return ",".join(day.isoformat() for day in sorted(self.closed))

    def day_spans(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per weekday, the (start, end) seconds from local midnight that are working time,
        overnight intervals split at midnight (the rest on the next weekday)."""
        return self._spans

    @cached_property
    def _spans(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        spans: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for weekday, start, end, _ in _pieces(self.weekly):
            spans[weekday].append((start * MINUTE, end * MINUTE))
        return tuple(tuple(sorted(day)) for day in spans)

    @cached_property
    def _closed_days(self) -> frozenset[int]:
        return frozenset(day_number_of(day) for day in self.closed)

    def working_seconds(self, start: int, end: int, zone: str) -> int:
        """The seconds of the instants [start, end) (UTC epoch seconds) that are office hours
        in `zone`: each stretch of constant UTC offset is laid on the local wall clock."""
        if end <= start:
            return 0
        periods = _offsets(zone, start, end)
        bounds = [since for since, _ in periods[1:]] + [end]
        spans, closed = self._spans, self._closed_days
        total = 0
        for (since, offset), until in zip(periods, bounds, strict=True):
            low, high = max(since, start) + offset, min(until, end) + offset
            if low < high:  # (the periods may begin before `start`: see _offsets)
                total += _local_overlap(low, high, spans, closed)
        return total

    def deadline(self, start: int, seconds: int, zone: str) -> int | None:
        """The first instant `due` (UTC epoch seconds) such that working_seconds(start, due,
        zone) == seconds: when `seconds` of office hours have elapsed since the instant `start`
        (`start` itself when `seconds <= 0`). None when that is not within
        DEADLINE_HORIZON_DAYS days of `start`: no working time in the week, closed dates all
        along, or a deadline years away. Each stretch of constant UTC offset is laid on the local
        wall clock, as working_seconds does, and walked a local day at a time."""
        if seconds <= 0:
            return start
        spans, closed = self._spans, self._closed_days
        if not any(spans):
            return None  # the walk would find nothing in the horizon
        remaining = seconds
        horizon = start + DEADLINE_HORIZON_DAYS * DAY_SECONDS
        for since, until, offset in _stretches(zone, start, horizon):
            low, high = since + offset, until + offset
            due, remaining = _local_deadline(low, high, remaining, spans, closed)
            if due is not None:
                return due - offset
        return None


def _stretches(zone: str, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The stretches [since, until) of constant UTC offset that cover [start, end), as (since,
    until, offset), from zone_periods over windows of a day, then each twice as long as the
    last: a near deadline probes the offsets of a few days only."""
    low, length = start, DAY_SECONDS
    while low < end:
        high = min(low + length, end)
        periods = _offsets(zone, low, high)
        bounds = [since for since, _ in periods[1:]] + [high]
        for (since, offset), until in zip(periods, bounds, strict=True):
            # Clipped to the window on both sides: the periods cover whole UTC days, so a
            # change after `high` would otherwise stretch this window into the next one.
            if max(since, low) < min(until, high):
                yield max(since, low), min(until, high), offset
        low, length = high, 2 * length


def _offsets(zone: str, start: int, end: int) -> Periods:
    """The zone's offsets, exact over [start, end] (and from the UTC midnight before `start`):
    looked up by whole UTC days, so that the many intervals of a recomputation share them."""
    return _day_periods(zone, start // DAY_SECONDS, end // DAY_SECONDS + 1)


@lru_cache(maxsize=4096)
def _day_periods(zone: str, first_day: int, last_day: int) -> Periods:
    return zone_periods(zone, [(first_day * DAY_SECONDS, last_day * DAY_SECONDS)])


def _local_deadline(
    low: int,
    high: int,
    remaining: int,
    spans: tuple[tuple[tuple[int, int], ...], ...],
    closed: frozenset[int],
) -> tuple[int | None, int]:
    """On the local wall-clock line (as _local_overlap): the first point of [low, high] by which
    `remaining` (> 0) working seconds have elapsed since `low`, and 0; or None and the working
    seconds still remaining at `high`."""
    for day in range(low // DAY_SECONDS, (high - 1) // DAY_SECONDS + 1):
        if day in closed:
            continue
        midnight = day * DAY_SECONDS
        for span_start, span_end in spans[(day + 3) % 7]:
            first, last = max(low, midnight + span_start), min(high, midnight + span_end)
            if last - first >= remaining:
                return first + remaining, 0
            remaining -= max(last - first, 0)
    return None, remaining


def _local_overlap(
    low: int, high: int, spans: tuple[tuple[tuple[int, int], ...], ...], closed: frozenset[int]
) -> int:
    """Working seconds of [low, high) on the local wall-clock line (seconds since local
    1970-01-01 00:00)."""
    total = 0
    for day in range(low // DAY_SECONDS, (high - 1) // DAY_SECONDS + 1):
        if day in closed:
            continue
        midnight = day * DAY_SECONDS
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (weekday 3 from Monday)
        for span_start, span_end in spans[weekday]:
            overlap = min(high, midnight + span_end) - max(low, midnight + span_start)
            if overlap > 0:
                total += overlap
    return total


# --- parsing -------------------------------------------------------------------------------


def parse_office_hours(schedule: str, closed: str | Iterable[str] = "") -> OfficeHours:
    """Office hours from the CLI's syntax; BadInput naming the part that is wrong."""
    weekly: list[list[Interval]] = [[] for _ in range(7)]
    given: set[int] = set()
    parts = [part.strip() for part in schedule.split(";")]
    if not any(parts):
        raise BadInput("schedule", "empty: give e.g. 'mon-fri 09:00-18:00'")
    for part in parts:
        if not part:
            continue
        days_text, _, times_text = part.partition(" ")
        days = _weekdays(days_text.strip().lower(), part)
        intervals = [_interval(text.strip(), part) for text in times_text.split(",")]
        for day in days:
            if day in given:
                raise BadInput("schedule", f"{WEEKDAYS[day]} is given twice (in {part!r})")
            given.add(day)
            weekly[day] = sorted(intervals)
    dates = closed.split(",") if isinstance(closed, str) else list(closed)
    return OfficeHours(tuple(tuple(day) for day in weekly), _closed_dates(dates))


def _weekdays(text: str, part: str) -> list[int]:
    if not text:
        raise BadInput("schedule", f"{part!r}: weekdays first, e.g. 'mon-fri 09:00-18:00'")
    days: list[int] = []
    for item in text.split(","):
        first, dash, last = item.partition("-")
        if first not in WEEKDAYS or (dash and last not in WEEKDAYS):
            raise BadInput(
                "schedule", f"{item!r} in {part!r} is not a weekday or range like 'mon-fri'"
            )
        start = WEEKDAYS.index(first)
        stop = WEEKDAYS.index(last) if dash else start
        days += [(start + step) % 7 for step in range((stop - start) % 7 + 1)]
    if len(set(days)) != len(days):
        raise BadInput("schedule", f"{text!r} names a weekday twice")
    return days


def _interval(text: str, part: str) -> Interval:
    start_text, dash, end_text = text.partition("-")
    start, end = _minutes(start_text.strip()), _minutes(end_text.strip())
    if not dash or start is None or end is None:
        raise BadInput("schedule", f"{text!r} in {part!r} is not an interval like '09:00-18:00'")
    if start == DAY_MINUTES:
        raise BadInput("schedule", f"{text!r} in {part!r}: an interval cannot start at 24:00")
    if end == start:
        raise BadInput("schedule", f"{text!r} in {part!r} is empty")
    return Interval(start, end)


def _minutes(text: str) -> int | None:
    found = _TIME.match(text)
    if found is None:
        return None
    hours, minutes = int(found[1]), int(found[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def _closed_dates(texts: Iterable[str]) -> frozenset[date]:
    days = set()
    for text in texts:
        if not text.strip():
            continue
        try:
            days.add(date.fromisoformat(text.strip()))
        except ValueError as exc:
            raise BadInput("closed", f"{text.strip()!r} is not a date like 2026-12-25") from exc
    return frozenset(days)


def _pieces(
    weekly: tuple[tuple[Interval, ...], ...],
) -> Iterator[tuple[int, int, int, str]]:
    """Each interval as (weekday, start, end) minutes within one local day, an overnight one
    split at midnight into two pieces (the second on the next weekday), with the interval's
    label ("fri 22:00-06:00")."""
    for weekday, intervals in enumerate(weekly):
        for interval in intervals:
            label = f"{WEEKDAYS[weekday]} {'-'.join(interval.text())}"
            if not interval.overnight:
                yield weekday, interval.start, interval.end, label
                continue
            yield weekday, interval.start, DAY_MINUTES, label
            if interval.end > 0:
                yield (weekday + 1) % 7, 0, interval.end, label


def _check_overlaps(weekly: tuple[tuple[Interval, ...], ...]) -> None:
    spans: list[list[tuple[int, int, str]]] = [[] for _ in range(7)]
    for weekday, start, end, label in _pieces(weekly):
        spans[weekday].append((start, end, label))
    for weekday, day in enumerate(spans):
        for (_, first_end, first), (second_start, _, second) in pairwise(sorted(day)):
            if second_start < first_end:
                raise BadInput("schedule", f"{first} and {second} overlap on {WEEKDAYS[weekday]}")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
