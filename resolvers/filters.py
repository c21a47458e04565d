"""The shared report filter: validation into a frozen `Filter`, and its translation to SQL.

Every report reads conversations through `conversation_conditions` (what the filter's lists ask
for) and `started_in_range` (the local days from..to), so a filter means the same thing in every
report and in the CSV export.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from models import Agent, ContactTag, Conversation, ConversationTag, Tag, WidgetClick
from models.enums import Source, Status
from models.errors import BadInput
from models.ids import parse_id
from models.metrics import BY_NAME, sla_breached
from resolvers import periods
from resolvers.buckets import Calendar, calendar, require_zone

EnumT = TypeVar("EnumT", bound=Enum)
SOURCES = tuple(source.value for source in Source)
STATUSES = tuple(status.value for status in Status)
CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
MAX_LIST_ENTRIES = 100
# Local day numbers must stay non-negative for the integer bucket arithmetic (see buckets.py).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date.max - timedelta(days=1)


@dataclass(frozen=True)
class SecondsRange:
    """A drill-down range of seconds: low inclusive, high exclusive; None is unbounded."""

    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class Filter:
    """A validated ReportFilter: names lower-cased and de-duplicated, an empty tuple = no filter."""

    first_day: date
    last_day: date
    timezone: str
    contact_tags: tuple[str, ...] = ()
    conversation_tags: tuple[str, ...] = ()
    agent_emails: tuple[str, ...] = ()
    sources: tuple[str, ...] = SOURCES
    # The drill-downs: which conversations behind a figure (see `drills_down`).
    weekdays: tuple[int, ...] = ()  # local start, 1 = Monday .. 7
    hours: tuple[int, ...] = ()  # local start, 0..23
    first_response_seconds: SecondsRange | None = None
    duration_seconds: SecondsRange | None = None
    ratings: tuple[int, ...] = ()  # the latest rating
    statuses: tuple[str, ...] = ()
    answered: bool | None = None  # whether a first human response exists
    sla_breached: bool | None = None  # whether a service-level target was breached
    ad_source_ids: tuple[str, ...] = ()  # the first message's ad (referral source id)
    ads_only: bool = False  # (the ad report) conversations that came from an ad
    buttons: tuple[int, ...] = ()  # attributed to a click on one of these buttons
    # How, not what: whether the reports may read the aggregate tables where they answer
    # (WAREPORTS_REPORT_AGGREGATES; `wareports bench --no-aggregates`). Links do not store it.
    use_aggregates: bool = True

    @property
    def calendar(self) -> Calendar:
        """The local days of the range in the filter's zone, with their UTC bounds."""
        return calendar(self.first_day, self.last_day, self.timezone)

    @property
    def hours_of_week(self) -> list[int]:
        """The hours of the week (0 = Monday 00:00-01:00) `weekdays` and `hours` both allow
        (168 at most), for one IN list."""
        return [
            (weekday - 1) * 24 + hour
            for weekday in self.weekdays or range(1, 8)
            for hour in self.hours or range(24)
        ]

    @property
    def drills_down(self) -> bool:
        """Whether the filter selects conversations by what the daily aggregate cells do not
        split by (local start hour, figures, status, clicks): then only the raw rows answer
        it (but a count: `resolvers.aggregates.count_conversations`)."""
        return bool(
            self.weekdays
            or self.hours
            or self.first_response_seconds is not None
            or self.duration_seconds is not None
            or self.ratings
            or self.statuses
            or self.answered is not None
            or self.sla_breached is not None
            or bool(self.ad_source_ids)
            or self.ads_only
            or self.buttons
        )


def parse_filter(
    *,
    from_: date | None = None,
    to: date | None = None,
    timezone: str | None = None,
    contact_tags: Sequence[str] | None = None,
    conversation_tags: Sequence[str] | None = None,
    agent_emails: Sequence[str] | None = None,
    sources: Sequence[object] | None = None,
    account_timezone: str,
    max_range_days: int,
    use_aggregates: bool = True,
    preset: object | None = None,
    shift: object | None = None,
    now: int | None = None,
    weekdays: Sequence[int] | None = None,
    hours: Sequence[int] | None = None,
    first_response_seconds: tuple[int | None, int | None] | None = None,
    duration_seconds: tuple[int | None, int | None] | None = None,
    ratings: Sequence[int] | None = None,
    statuses: Sequence[object] | None = None,
    answered: bool | None = None,
    sla_breached: bool | None = None,
    buttons: Sequence[str] | None = None,
    ad_source_ids: Sequence[str] | None = None,
) -> Filter:
    """Validate the fields of a ReportFilter; raises `BadInput` naming the offending field.

    The range is `from_..to`, or a `preset` resolved against the local date at `now` (UTC epoch
    seconds) in the filter's zone; `shift` then moves it (`resolvers.periods`). `sources`,
    `preset`, `shift` and `statuses` take the enum values ("FLOW", ...) or members whose
    `.value` is one; the seconds ranges are (min, max) pairs; `buttons` are ids as text.
    """
    zone = _zone(account_timezone if timezone is None else timezone)
    first_day, last_day = _dates(from_, to, _preset(preset), _shift(shift), zone, now)
    first_day, last_day = _range(first_day, last_day, max_range_days)
    return Filter(
        first_day=first_day,
        last_day=last_day,
        timezone=zone,
        contact_tags=_names("filter.contactTags", contact_tags),
        conversation_tags=_names("filter.conversationTags", conversation_tags),
        agent_emails=_names("filter.agentEmails", agent_emails),
        sources=_sources(sources),
        weekdays=_integers("filter.weekdays", weekdays, 1, 7, "1 (Monday) to 7 (Sunday)"),
        hours=_integers("filter.hours", hours, 0, 23, "0 to 23"),
        first_response_seconds=_seconds("filter.firstResponseSeconds", first_response_seconds),
        duration_seconds=_seconds("filter.durationSeconds", duration_seconds),
        ratings=_integers("filter.ratings", ratings, 1, 5, "1 to 5"),
        statuses=_statuses(statuses),
        answered=_boolean("filter.answered", answered),
        sla_breached=_boolean("filter.slaBreached", sla_breached),
        ad_source_ids=_ad_ids(ad_source_ids),
        buttons=_buttons(buttons),
        use_aggregates=use_aggregates,
    )


def _dates(
    from_: date | None,
    to: date | None,
    preset: periods.RangePreset | None,
    shift: periods.PeriodShift | None,
    zone: str,
    now: int | None,
) -> tuple[date, date]:
    """The range a filter asks for, before the checks of `_range`."""
    if preset is not None and (from_ is not None or to is not None):
        raise BadInput("filter.preset", "give either a preset or filter.from and filter.to")
    if preset is None:
        if from_ is None and to is None:
            raise BadInput("filter.preset", "give a preset, or filter.from and filter.to")
        if from_ is None:
            raise BadInput("filter.from", "required with filter.to (or give a preset)")
        if to is None:
            raise BadInput("filter.to", "required with filter.from (or give a preset)")
        first_day, last_day = _range(from_, to, None)
    else:
        if now is None:
            raise ValueError("a preset needs the current instant (`now`)")
        today = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
        first_day, last_day = periods.preset_range(preset, today)
    if shift is not None:
        first_day, last_day = periods.shifted(first_day, last_day, shift, preset)
    return first_day, last_day


def _preset(value: object | None) -> periods.RangePreset | None:
    return _member(periods.RangePreset, value, "filter.preset", "preset")


def _shift(value: object | None) -> periods.PeriodShift | None:
    return _member(periods.PeriodShift, value, "filter.shift", "shift")


def _member(kind: type[EnumT], value: object | None, field: str, noun: str) -> EnumT | None:
    """The member of `kind` whose value `value` is (or holds as `.value`); None for None."""
    if value is None:
        return None
    name = str(getattr(value, "value", value))
    try:
        return kind(name)
    except ValueError:
        raise BadInput(field, f"unknown {noun} {name}") from None


def _range(first_day: date, last_day: date, max_range_days: int | None) -> tuple[date, date]:
    if first_day < FIRST_DAY:
        raise BadInput("filter.from", f"must be {FIRST_DAY.isoformat()} or later")
    if last_day > LAST_DAY:
        raise BadInput("filter.to", f"must be {LAST_DAY.isoformat()} or earlier")
    if first_day > last_day:
        raise BadInput(
            "filter.from",
            f"filter.from ({first_day.isoformat()}) is after filter.to ({last_day.isoformat()})",
        )
    days = (last_day - first_day).days + 1
    if max_range_days is not None and days > max_range_days:
        raise BadInput(
            "filter.to",
            f"the range filter.from..filter.to spans {days} days; the maximum is "
            f"{max_range_days} days",
        )
    return first_day, last_day


def _zone(name: str) -> str:
    return require_zone(name, "filter.timezone")


def _names(field: str, values: Sequence[str] | None) -> tuple[str, ...]:
    """Lower-cased, trimmed, de-duplicated names; matching is case-insensitive."""
    if values is None:
        return ()
    _counted(field, values)
    if any("\x00" in value for value in values):
        # No stored name can hold one, and PostgreSQL refuses it in a text parameter.
        raise BadInput(field, "entries must not contain NUL characters")
    return tuple(dict.fromkeys(value.strip().lower() for value in values))


def _sources(values: Sequence[object] | None) -> tuple[str, ...]:
    if not values:
        return SOURCES
    return _chosen("filter.sources", values, SOURCES, "source(s)")


def _chosen(
    field: str, values: Sequence[object], allowed: tuple[str, ...], noun: str
) -> tuple[str, ...]:
    """The enum values `values` name (values, or members whose `.value` is one), in the order
    of `allowed`; BadInput naming `field` for any other."""
    _counted(field, values)
    chosen = {str(getattr(value, "value", value)) for value in values}
    unknown = sorted(chosen - set(allowed))
    if unknown:
        raise BadInput(field, f"unknown {noun} {', '.join(unknown)}")
    return tuple(value for value in allowed if value in chosen)


def _counted(field: str, values: Sequence[object]) -> None:
    if len(values) > MAX_LIST_ENTRIES:
        raise BadInput(field, f"has {len(values)} entries; at most {MAX_LIST_ENTRIES} are allowed")


def _integers(
    field: str, values: Sequence[int] | None, low: int, high: int, allowed: str
) -> tuple[int, ...]:
    """Distinct integers low..high, ascending."""
    if values is None:
        return ()
    _counted(field, values)
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise BadInput(field, f"entries are {allowed}; got {value!r}")
    return tuple(sorted(set(values)))


def _seconds(field: str, bounds: tuple[int | None, int | None] | None) -> SecondsRange | None:
    if bounds is None:
        return None
    low, high = bounds
    for name, value in (("min", low), ("max", high)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadInput(field, f"{name} must be a whole number of seconds")
        if value < 0:
            raise BadInput(field, f"{name} must not be negative, got {value}")
    if low is not None and high is not None and low >= high:
        raise BadInput(
            field, f"min ({low}) must be less than max ({high}): min is inclusive, max exclusive"
        )
    return SecondsRange(low, high)


def _statuses(values: Sequence[object] | None) -> tuple[str, ...]:
    if not values:
        return ()
    return _chosen("filter.statuses", values, STATUSES, "status(es)")


def _ad_ids(values: Sequence[str] | None) -> tuple[str, ...]:
    if not values:
        return ()
    _counted("filter.adSourceIds", values)
    ids = tuple(dict.fromkeys(value.strip() for value in values))
    if any(not value or len(value) > 512 for value in ids):
        raise BadInput("filter.adSourceIds", "an ad source id is 1 to 512 characters")
    return ids


def _boolean(field: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise BadInput(field, "must be true, false or null")
    return value


def _buttons(values: Sequence[str] | None) -> tuple[int, ...]:
    if values is None:
        return ()
    _counted("filter.buttons", values)
    ids = []
    for value in values:
        key = parse_id(str(value))
        if key is None:
            raise BadInput("filter.buttons", f"{str(value)[:40]!r} is not a button id")
        ids.append(key)
    return tuple(sorted(set(ids)))


def conversation_conditions(account_id: int, flt: Filter) -> list[ColumnElement[bool]]:
    """SQL conditions on `conversation` for the account and the filter's lists (not its range)."""
    return [col(Conversation.account_id) == account_id, *list_conditions(account_id, flt)]


def list_conditions(account_id: int, flt: Filter) -> list[ColumnElement[bool]]:
    """SQL conditions on `conversation` for the filter's lists alone (the account's conversations
    are selected by the caller)."""
    conditions: list[ColumnElement[bool]] = []
    if flt.contact_tags:
        conditions.append(_has_contact_tag(account_id, flt.contact_tags))
    if flt.conversation_tags:
        conditions.append(_has_conversation_tag(account_id, flt.conversation_tags))
    if flt.agent_emails:
        conditions.append(_assigned_to(account_id, flt.agent_emails))
    if set(flt.sources) != set(SOURCES):
        conditions.append(col(Conversation.source).in_(flt.sources))
    if flt.drills_down:
        conditions.extend(_drill_down_conditions(account_id, flt))
    return conditions


def _drill_down_conditions(account_id: int, flt: Filter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.weekdays or flt.hours:
        hour_of_week = flt.calendar.start_hour_of_week(col(Conversation.started_at))
        conditions.append(hour_of_week.in_(flt.hours_of_week))
    # The values the metrics measure (null: nothing to measure, as the averages leave out).
    for bounds, metric in (
        (flt.first_response_seconds, BY_NAME["avg_first_response_seconds"]),
        (flt.duration_seconds, BY_NAME["avg_duration_seconds"]),
    ):
        if bounds is None:
            continue
        assert metric.value is not None
        value = metric.value(CONVERSATION)
        conditions.append(value.is_not(None))
        if bounds.low is not None:
            conditions.append(value >= bounds.low)
        if bounds.high is not None:
            conditions.append(value < bounds.high)
    if flt.ratings:
        conditions.append(col(Conversation.rating).in_(flt.ratings))
    if flt.statuses:
        conditions.append(col(Conversation.status).in_(flt.statuses))
    if flt.answered is not None:
        responded = col(Conversation.first_response_at)
        conditions.append(responded.is_not(None) if flt.answered else responded.is_(None))
    if flt.ads_only:
        conditions.append(col(Conversation.referral_source_id).is_not(None))
    if flt.ad_source_ids:
        conditions.append(col(Conversation.referral_source_id).in_(flt.ad_source_ids))
    if flt.sla_breached is not None:
        breached = sla_breached(CONVERSATION)
        conditions.append(breached if flt.sla_breached else ~breached)
    if flt.buttons:
        click = aliased(WidgetClick)
        attributed = select(col(click.conversation_id)).where(
            col(click.account_id) == account_id,
            col(click.button_id).in_(flt.buttons),
            col(click.conversation_id).is_not(None),
        )
        conditions.append(col(Conversation.id).in_(attributed))
    return conditions


def started_in_range(flt: Filter) -> list[ColumnElement[bool]]:
    """SQL conditions: the conversation started on one of the filter's local days."""
    days = flt.calendar
    return [
        col(Conversation.started_at) >= days.start,
        col(Conversation.started_at) < days.end,
    ]


# Each list becomes an uncorrelated IN (sub-query): both engines evaluate it once (SQLite builds
# an ephemeral index, PostgreSQL a hashed semi-join) instead of once per conversation or message.
# Aliases keep the sub-queries independent of the outer query, which may join the same tables.


def _has_contact_tag(account_id: int, names: Iterable[str]) -> ColumnElement[bool]:
    link, tag = aliased(ContactTag), aliased(Tag)
    tagged = (
        select(col(link.contact_id))
        .join(tag, col(tag.id) == col(link.tag_id))
        .where(
            col(link.account_id) == account_id,
            col(tag.account_id) == account_id,
            col(tag.kind) == "contact",
            col(tag.name_key).in_(list(names)),
        )
    )
    return col(Conversation.contact_id).in_(tagged)


def _has_conversation_tag(account_id: int, names: Iterable[str]) -> ColumnElement[bool]:
    link, tag = aliased(ConversationTag), aliased(Tag)
    tagged = (
        select(col(link.conversation_id))
        .join(tag, col(tag.id) == col(link.tag_id))
        .where(
            col(link.account_id) == account_id,
            col(tag.account_id) == account_id,
            col(tag.kind) == "conversation",
            col(tag.name_key).in_(list(names)),
        )
    )
    return col(Conversation.id).in_(tagged)


def _assigned_to(account_id: int, emails: Iterable[str]) -> ColumnElement[bool]:
    agent = aliased(Agent)
    return col(Conversation.assignee_id).in_(
        select(agent.id).where(agent.account_id == account_id, col(agent.email).in_(list(emails)))
    )
