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

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from models import Agent, ContactTag, Conversation, ConversationTag, Tag
from models.enums import Source
from models.errors import BadInput
from resolvers import periods
from resolvers.buckets import Calendar, calendar, require_zone

EnumT = TypeVar("EnumT", bound=Enum)
SOURCES = tuple(source.value for source in Source)
MAX_LIST_ENTRIES = 100
# Local day numbers must stay non-negative for the integer bucket arithmetic (see buckets.py).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date.max - timedelta(days=1)


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
    # How, not what: whether the reports may read the aggregate tables where they answer
    # (WAREPORTS_REPORT_AGGREGATES; `wareports bench --no-aggregates`). Links do not store it.
    use_aggregates: bool = True

    @property
    def calendar(self) -> Calendar:
        """The local days of the range in the filter's zone, with their UTC bounds."""
        return calendar(self.first_day, self.last_day, self.timezone)


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
) -> Filter:
    """Validate the fields of a ReportFilter; raises `BadInput` naming the offending field.

    The range is `from_..to`, or a `preset` resolved against the local date at `now` (UTC epoch
    seconds) in the filter's zone; `shift` then moves it (`resolvers.periods`). `sources`,
    `preset` and `shift` take the enum values ("FLOW", ...) or members whose `.value` is one.
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
    if len(values) > MAX_LIST_ENTRIES:
        raise BadInput(field, f"has {len(values)} entries; at most {MAX_LIST_ENTRIES} are allowed")
    if any("\x00" in value for value in values):
        # No stored name can hold one, and PostgreSQL refuses it in a text parameter.
        raise BadInput(field, "entries must not contain NUL characters")
    return tuple(dict.fromkeys(value.strip().lower() for value in values))


def _sources(values: Sequence[object] | None) -> tuple[str, ...]:
    if not values:
        return SOURCES
    if len(values) > MAX_LIST_ENTRIES:
        raise BadInput(
            "filter.sources", f"has {len(values)} entries; at most {MAX_LIST_ENTRIES} are allowed"
        )
    chosen = {str(getattr(value, "value", value)) for value in values}
    unknown = sorted(chosen - set(SOURCES))
    if unknown:
        raise BadInput("filter.sources", f"unknown source(s) {', '.join(unknown)}")
    return tuple(source for source in SOURCES if source in chosen)


def conversation_conditions(account_id: int, flt: Filter) -> list[ColumnElement[bool]]:
    """SQL conditions on `conversation` for the account and the filter's lists (not its range)."""
    conditions: list[ColumnElement[bool]] = [col(Conversation.account_id) == account_id]
    if flt.contact_tags:
        conditions.append(_has_contact_tag(account_id, flt.contact_tags))
    if flt.conversation_tags:
        conditions.append(_has_conversation_tag(account_id, flt.conversation_tags))
    if flt.agent_emails:
        conditions.append(_assigned_to(account_id, flt.agent_emails))
    if set(flt.sources) != set(SOURCES):
        conditions.append(col(Conversation.source).in_(flt.sources))
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
