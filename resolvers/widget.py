"""The WhatsApp button report: clicks in range and the conversations attributed to them."""

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from sqlalchemy import Select, and_, case, func, not_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation, WidgetButton, WidgetClick
from models.cells import CLICK_DIMENSIONS
from models.timing import report_part
from resolvers import aggregates
from resolvers.filters import Filter, list_conditions


@dataclass(frozen=True)
class ClickCount:
    key: str | None  # None: no value given
    clicks: int
    conversations: int


@dataclass(frozen=True)
class ClickBucket:
    start: date
    clicks: int
    conversations: int


@dataclass(frozen=True)
class WidgetReport:
    clicks: int
    conversations: int
    daily: tuple[ClickBucket, ...]
    by_button: tuple[ClickCount, ...]
    by_referrer: tuple[ClickCount, ...]
    by_utm_campaign: tuple[ClickCount, ...]
    by_utm_medium: tuple[ClickCount, ...]
    by_utm_source: tuple[ClickCount, ...]
    by_utm_term: tuple[ClickCount, ...]
    by_utm_content: tuple[ClickCount, ...]


class WidgetPart(Enum):
    """What a widget report holds; each value is its field's name (GraphQL: camelCase), but
    TOTALS, which is the `clicks` and `conversations` fields."""

    TOTALS = "totals"
    DAILY = "daily"
    BY_BUTTON = "by_button"
    BY_REFERRER = "by_referrer"
    BY_UTM_CAMPAIGN = "by_utm_campaign"
    BY_UTM_MEDIUM = "by_utm_medium"
    BY_UTM_SOURCE = "by_utm_source"
    BY_UTM_TERM = "by_utm_term"
    BY_UTM_CONTENT = "by_utm_content"


# The group parts, one per click dimension, and the column each groups the raw clicks by.
GROUP_KEYS: dict[WidgetPart, Any] = {
    WidgetPart(f"by_{dimension}"): col(
        WidgetButton.name if dimension == "button" else getattr(WidgetClick, dimension)
    )
    for dimension in CLICK_DIMENSIONS
}
WIDGET_PARTS = frozenset(WidgetPart)


@report_part("widget")
async def widget_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[WidgetPart] = WIDGET_PARTS,
) -> WidgetReport:
    """Clicks whose local day is in range, and the conversations attributed to them that match
    the filter's lists (tags, agents, sources); clicks themselves are never filtered by those.
    Parts not in `parts` come back empty (zero totals, no buckets or groups)."""
    counting = await _counting(session, account_id, flt)
    clicks = conversations = 0
    if WidgetPart.TOTALS in parts:
        ((_, _, clicks, conversations),) = await counting(None, False)
    daily: tuple[ClickBucket, ...] = ()
    if WidgetPart.DAILY in parts:
        daily = _daily(await counting(None, True), flt)
    groups = {part: _ranked(await counting(part, False)) for part in GROUP_KEYS if part in parts}
    return WidgetReport(
        clicks=clicks,
        conversations=conversations,
        daily=daily,
        **{part.value: groups.get(part, ()) for part in GROUP_KEYS},
    )


CountRow = tuple[str | None, int | None, int, int]  # key, day number, clicks, conversations
Counting = Callable[[WidgetPart | None, bool], Awaitable[list[CountRow]]]


async def _counting(session: AsyncSession, account_id: int, flt: Filter) -> Counting:
    """Clicks and attributed conversations, grouped by a GROUP_KEYS column and/or local day:
    one code path for the totals, the daily buckets and every group. Over the click aggregates
    when they answer the filter; when only its lists keep them from answering (they select
    among the attributed conversations, whose tags and assignee change), the clicks and every
    attributed conversation from them, less or only those counted in one pass over the
    attributed clicks (`_attributed`); over the raw clicks otherwise (days in another zone)."""

    async def rows(query: Select[Any]) -> list[CountRow]:
        found = (await session.execute(query)).all()
        return [(row._mapping.get("key"), row._mapping.get("day"), *row[-2:]) for row in found]

    if await aggregates.clicks_answer(session, account_id, flt):

        async def aggregated(group: WidgetPart | None, by_day: bool) -> list[CountRow]:
            query = aggregates.click_counts_query(account_id, flt, _dimension(group), by_day)
            return await rows(query)

        return aggregated
    if await aggregates.in_zone(session, account_id, flt):
        # Count the smaller side: a filter most attributed conversations match (a source most
        # of them come from) is answered by counting those it leaves out.
        leaving_out = await _mostly_matching(session, account_id, flt)
        counted = await _attributed(session, account_id, flt, matching=not leaving_out)

        async def clicks_aggregated(group: WidgetPart | None, by_day: bool) -> list[CountRow]:
            query = aggregates.click_counts_query(account_id, flt, _dimension(group), by_day)
            counts = counted[group, by_day]
            found = []
            for key, day, clicks, attributed in await rows(query):
                some = counts.get(day if by_day else key, 0)
                found.append((key, day, clicks, attributed - some if leaving_out else some))
            return found

        return clicks_aggregated

    async def raw(group: WidgetPart | None, by_day: bool) -> list[CountRow]:
        return await rows(_raw_counts_query(account_id, flt, group, by_day))

    return raw


def _dimension(group: WidgetPart | None) -> str | None:
    return None if group is None else group.value.removeprefix("by_")


# Attributed conversations counted per part (group, by day) and key (a day number, a group's
# value, None for the totals).
Counted = dict[tuple[WidgetPart | None, bool], Counter[Any]]
SAMPLE_CLICKS = 1000  # attributed clicks in range that tell which side `_attributed` counts


async def _attributed(
    session: AsyncSession, account_id: int, flt: Filter, *, matching: bool
) -> Counted:
    """The conversations attributed to a click in range that match the filter's lists (or,
    not `matching`, that do not), by local day of the click and by each group's key: one
    statement for every part of the report, where the raw path scans the range's clicks once
    per part. A click is attributed to one conversation at most and a conversation to one click
    at most (`ingest.buttons.attribute`): counting clicks counts conversations."""
    query = _attributed_clicks(
        select(flt.calendar.day_number(col(WidgetClick.clicked_at)), *GROUP_KEYS.values()),
        account_id,
        flt,
        matching=matching,
    ).join(WidgetButton, col(WidgetButton.id) == col(WidgetClick.button_id))
    found = (await session.execute(query)).all()
    days, *keys = zip(*found, strict=True) if found else ((),) * (1 + len(GROUP_KEYS))
    counted: Counted = {(None, False): Counter({None: len(found)}), (None, True): Counter(days)}
    for group, values in zip(GROUP_KEYS, keys, strict=True):
        counted[group, False] = Counter(values)
    return counted


async def _mostly_matching(session: AsyncSession, account_id: int, flt: Filter) -> bool:
    """Whether most of the first SAMPLE_CLICKS attributed clicks in range have a conversation
    that matches the filter's lists (a guess that only decides which side is counted). A list
    of tags or agents is taken to select few: the sample would read every conversation of them
    (the lists are sub-queries), which costs what counting them does."""
    if flt.contact_tags or flt.conversation_tags or flt.agent_emails:
        return False
    matches = case((and_(*list_conditions(account_id, flt)), 1), else_=0).label("matches")
    sample = _clicks_in_range(select(matches), account_id, flt, every_click=False, lists=False)
    flags = sample.limit(SAMPLE_CLICKS).subquery()
    query = select(func.count(), func.coalesce(func.sum(flags.c.matches), 0))
    total, matching = (await session.execute(query)).one()
    return matching * 2 > total


def _attributed_clicks(
    query: Select[Any], account_id: int, flt: Filter, *, matching: bool
) -> Select[Any]:
    """The account's clicks in range attributed to a conversation that matches the filter's
    lists (not `matching`: that does not match them)."""
    if matching:
        return _clicks_in_range(query, account_id, flt, every_click=False)
    lists = and_(*list_conditions(account_id, flt))
    unfiltered = _clicks_in_range(query, account_id, flt, every_click=False, lists=False)
    return unfiltered.where(not_(func.coalesce(lists, False)))


def _clicks_in_range(
    query: Select[Any], account_id: int, flt: Filter, *, every_click: bool, lists: bool = True
) -> Select[Any]:
    """The account's clicks whose instant is in the filter's range, joined to their attributed
    conversation where it matches the filter's lists (`every_click`: the others too, with no
    conversation; otherwise only those attributed to a matching conversation; not `lists`:
    to their conversation, whatever the lists)."""
    days = flt.calendar
    conditions = list_conditions(account_id, flt) if lists else []
    matching = and_(
        col(Conversation.id) == col(WidgetClick.conversation_id),
        col(Conversation.account_id) == account_id,
        *conditions,
    )
    clicks = query.select_from(WidgetClick)
    joined = (
        clicks.outerjoin(Conversation, matching)
        if every_click
        else clicks.join(Conversation, matching)
    )
    return joined.where(
        col(WidgetClick.account_id) == account_id,
        col(WidgetClick.clicked_at) >= days.start,
        col(WidgetClick.clicked_at) < days.end,
    )


def _raw_counts_query(
    account_id: int, flt: Filter, group: WidgetPart | None, by_day: bool
) -> Select[Any]:
    days = flt.calendar
    keys: list[Any] = []
    if group is not None:
        keys.append(GROUP_KEYS[group].label("key"))
    if by_day:
        keys.append(days.day_number(col(WidgetClick.clicked_at)).label("day"))
    counts = select(
        *keys,
        func.count().label("clicks"),
        func.count(col(Conversation.id).distinct()).label("conversations"),
    )
    query = _clicks_in_range(counts, account_id, flt, every_click=True)
    if group is WidgetPart.BY_BUTTON:
        query = query.join(WidgetButton, col(WidgetButton.id) == col(WidgetClick.button_id))
    return query.group_by(*keys) if keys else query


def _daily(rows: Sequence[CountRow], flt: Filter) -> tuple[ClickBucket, ...]:
    days = flt.calendar
    found = {day: (clicks, conversations) for _, day, clicks, conversations in rows}
    return tuple(ClickBucket(day, *found.get(days.day_number_of(day), (0, 0))) for day in days.days)


def _ranked(rows: Sequence[CountRow]) -> tuple[ClickCount, ...]:
    """Most clicks first, then key, then the clicks with no value (ordered here, not in SQL,
    because the engines order NULLs and text differently)."""
    counts = [ClickCount(key, clicks, conversations) for key, _, clicks, conversations in rows]
    return tuple(sorted(counts, key=lambda row: (-row.clicks, row.key is None, row.key or "")))
