"""Ranges people think in: presets resolved against today's local date, and the period to
compare a range with (`ReportFilter.preset` and `ReportFilter.shift`).

Pure date arithmetic: the caller gives `today` (the local date now in the filter's zone), so
that a fixed clock fixes every answer.
"""

from datetime import date, timedelta
from enum import Enum


class RangePreset(Enum):
    TODAY = "TODAY"
    YESTERDAY = "YESTERDAY"
    LAST_7_DAYS = "LAST_7_DAYS"
    LAST_30_DAYS = "LAST_30_DAYS"
    LAST_90_DAYS = "LAST_90_DAYS"
    LAST_365_DAYS = "LAST_365_DAYS"
    THIS_WEEK = "THIS_WEEK"
    LAST_WEEK = "LAST_WEEK"
    THIS_MONTH = "THIS_MONTH"
    LAST_MONTH = "LAST_MONTH"
    THIS_QUARTER = "THIS_QUARTER"
    LAST_QUARTER = "LAST_QUARTER"
    THIS_YEAR = "THIS_YEAR"
    LAST_YEAR = "LAST_YEAR"


class PeriodShift(Enum):
    PREVIOUS_PERIOD = "PREVIOUS_PERIOD"
    PREVIOUS_YEAR = "PREVIOUS_YEAR"


class Unit(Enum):
    """The calendar unit of a calendar preset."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# The presets that are the N local days ending today, today included.
LAST_DAYS = {
    RangePreset.LAST_7_DAYS: 7,
    RangePreset.LAST_30_DAYS: 30,
    RangePreset.LAST_90_DAYS: 90,
    RangePreset.LAST_365_DAYS: 365,
}
# The calendar presets: their unit, and whether they are the current one (to today) or the
# previous one (whole).
CALENDAR = {
    RangePreset.THIS_WEEK: (Unit.WEEK, True),
    RangePreset.LAST_WEEK: (Unit.WEEK, False),
    RangePreset.THIS_MONTH: (Unit.MONTH, True),
    RangePreset.LAST_MONTH: (Unit.MONTH, False),
    RangePreset.THIS_QUARTER: (Unit.QUARTER, True),
    RangePreset.LAST_QUARTER: (Unit.QUARTER, False),
    RangePreset.THIS_YEAR: (Unit.YEAR, True),
    RangePreset.LAST_YEAR: (Unit.YEAR, False),
}


def unit_start(day: date, unit: Unit) -> date:
    """The first day of the week (ISO: Monday), month, quarter or year holding `day`."""
    if unit is Unit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is Unit.MONTH:
        return day.replace(day=1)
    if unit is Unit.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def previous_start(start: date, unit: Unit) -> date:
    """The first day of the unit before the one starting on `start`."""
    return unit_start(start - timedelta(days=1), unit)


def preset_range(preset: RangePreset, today: date) -> tuple[date, date]:
    """The local days a preset covers when today is `today`: first and last, inclusive."""
    if preset is RangePreset.TODAY:
        return today, today
    if preset is RangePreset.YESTERDAY:
        return today - timedelta(days=1), today - timedelta(days=1)
    if preset in LAST_DAYS:
        return today - timedelta(days=LAST_DAYS[preset] - 1), today
    unit, current = CALENDAR[preset]
    start = unit_start(today, unit)
    if current:
        return start, today
    return previous_start(start, unit), start - timedelta(days=1)


def shifted(
    first: date, last: date, shift: PeriodShift, preset: RangePreset | None = None
) -> tuple[date, date]:
    """The range to compare `first..last` with. PREVIOUS_PERIOD: as many days right before,
    except after a calendar preset, where it is the previous calendar unit clipped to as many
    days from its start as the range has (THIS_MONTH on 15 November: 1-15 October; LAST_MONTH
    October: all of September). PREVIOUS_YEAR: the same dates a year earlier (29 February:
    28 February)."""
    if shift is PeriodShift.PREVIOUS_YEAR:
        return _year_before(first), _year_before(last)
    days = (last - first).days + 1
    if preset in CALENDAR:
        unit, _ = CALENDAR[preset]
        start = previous_start(first, unit)
        end = first - timedelta(days=1)  # the previous unit's last day
        return start, min(start + timedelta(days=days - 1), end)
    return first - timedelta(days=days), first - timedelta(days=1)


def _year_before(day: date) -> date:
    if day.month == 2 and day.day == 29:
        return date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)
