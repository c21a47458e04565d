"""The WhatsApp button report: clicks in range and the conversations attributed to them."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation, WidgetButton, WidgetClick
from models.cells import CLICK_DIMENSIONS
from models.timing import report_part
from resolvers import aggregates
from resolvers.filters import Filter, conversation_conditions


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
    among the attributed conversations, whose tags and assignee change), the clicks from them
    and the conversations from one pass over the attributed clicks (`_attributed`); over the
    raw clicks otherwise (days in another zone)."""

    async def rows(query: Select[Any]) -> list[CountRow]:
        found = (await session.execute(query)).all()
        return [(row._mapping.get("key"), row._mapping.get("day"), *row[-2:]) for row in found]

    if await aggregates.clicks_answer(session, account_id, flt):

        async def aggregated(group: WidgetPart | None, by_day: bool) -> list[CountRow]:
            query = aggregates.click_counts_query(account_id, flt, _dimension(group), by_day)
            return await rows(query)

        return aggregated
    if await aggregates.in_zone(session, account_id, flt):
        attributed = await _attributed(session, account_id, flt)

        async def clicks_aggregated(group: WidgetPart | None, by_day: bool) -> list[CountRow]:
            query = aggregates.click_counts_query(account_id, flt, _dimension(group), by_day)
            counted = attributed[(group, by_day)]
            return [
                (key, day, clicks, len(counted.get(day if by_day else key, ())))
                for key, day, clicks, _ in await rows(query)
            ]

        return clicks_aggregated

    async def raw(group: WidgetPart | None, by_day: bool) -> list[CountRow]:
        return await rows(_raw_counts_query(account_id, flt, group, by_day))

    return raw


def _dimension(group: WidgetPart | None) -> str | None:
    return None if group is None else group.value.removeprefix("by_")


Attributed = dict[tuple[WidgetPart | None, bool], dict[Any, set[int]]]


async def _attributed(session: AsyncSession, account_id: int, flt: Filter) -> Attributed:
    """The conversations that match the filter and are attributed to a click in range, by
    local day of the click and by each group's key (None for the totals): one statement for
    every part of the report, where the raw path scans the range's clicks once per part."""
    columns = select(
        flt.calendar.day_number(col(WidgetClick.clicked_at)),
        *GROUP_KEYS.values(),
        col(WidgetClick.conversation_id),
    )
    query = _clicks_in_range(columns, account_id, flt, every_click=False).join(
        WidgetButton, col(WidgetButton.id) == col(WidgetClick.button_id)
    )
    found: Attributed = {(None, False): {}, (None, True): {}}
    found |= {(group, False): {} for group in GROUP_KEYS}
    for day, *keys, conversation_id in (await session.execute(query)).all():
        found[None, False].setdefault(None, set()).add(conversation_id)
        found[None, True].setdefault(day, set()).add(conversation_id)
        for group, key in zip(GROUP_KEYS, keys, strict=True):
            found[group, False].setdefault(key, set()).add(conversation_id)
    return found


def _clicks_in_range(
    query: Select[Any], account_id: int, flt: Filter, *, every_click: bool
) -> Select[Any]:
    """The account's clicks whose instant is in the filter's range, joined to their attributed
    conversation where it matches the filter's lists (`every_click`: the others too, with no
    conversation; otherwise only those attributed to a matching conversation)."""
    days = flt.calendar
    matching = and_(
        col(Conversation.id) == col(WidgetClick.conversation_id),
        *conversation_conditions(account_id, flt),
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
