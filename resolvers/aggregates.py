"""The aggregate read path: report figures summed from the aggregate tables.

Ingestion keeps the tables exact (ingest/aggregates.py) per local day of the account's zone,
source and assignee, and per conversation tag; and per local hour for the heatmap. They answer
a filter exactly when its zone is the zone they were built in and it does not ask for contact
tags or several conversation tags (a conversation with two of them would count twice);
`resolvers.metrics.compute_metrics` picks this path then, and the raw rows otherwise (also for a
tag report filtered by a tag and by agents). The figures come back under the names and with the
arithmetic of the raw path (averages are sums / counts, as floats), so both paths give the same
`Metrics`. Distinct contacts do not add up across cells: they are the size of the union of the
cells' contact sets (`contact_counts`, `ingest.contact_sets`)."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pyroaring import BitMap, BitMap64
from sqlalchemy import BigInteger, ColumnElement, Float, Select, Table, cast, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Agent, Tag
from models.calendar import day_of_hour, hour_of_week_of_hour, week_of_day
from models.cells import HOURLY_SMALLEST_FIRST, SMALLEST_FIRST
from models.metrics import BY_NAME, METRICS, Kind, Rows
from models.tables import (
    AgentDailyMessages,
    AggregateState,
    ClickDailyFigures,
    DailyFigures,
    SourceDailyFigures,
    TagAgentDailyFigures,
    TagDailyFigures,
    TagPairDailyFigures,
)
from resolvers.filters import SOURCES, Filter, SecondsRange

DAILY: Table = DailyFigures.__table__  # type: ignore[attr-defined]
SOURCE_DAILY: Table = SourceDailyFigures.__table__  # type: ignore[attr-defined]
TAG_DAILY: Table = TagDailyFigures.__table__  # type: ignore[attr-defined]
TAG_AGENT_DAILY: Table = TagAgentDailyFigures.__table__  # type: ignore[attr-defined]
TAG_PAIR_DAILY: Table = TagPairDailyFigures.__table__  # type: ignore[attr-defined]
AGENT_MESSAGES: Table = AgentDailyMessages.__table__  # type: ignore[attr-defined]
CLICK_DAILY: Table = ClickDailyFigures.__table__  # type: ignore[attr-defined]
UNASSIGNED = 0
# The Metrics fields this path answers (all but the distinct counts and the percentiles; a
# distribution's bins come as columns named like its figure columns), and those of them that
# count conversations (not messages).
FIELDS = frozenset(metric.name for metric in METRICS if metric.aggregated)
CONVERSATION_FIELDS = frozenset(
    m.name for m in METRICS if m.aggregated and m.rows is Rows.CONVERSATIONS
)


async def aggregate_zone(session: AsyncSession, account_id: int) -> str | None:
    """The zone the account's aggregates count days in; None while they are not built."""
    key = ("aggregate_zone", account_id)
    if key not in session.info:  # a request asks several times; the answer cannot change much
        session.info[key] = await session.scalar(
            select(AggregateState.timezone).where(col(AggregateState.account_id) == account_id)
        )
    zone: str | None = session.info[key]
    return zone


async def in_zone(session: AsyncSession, account_id: int, flt: Filter) -> bool:
    """Whether the aggregates may answer the filter at all: it lets them
    (`Filter.use_aggregates`), and they count days in its zone. Every aggregate read asks."""
    return flt.use_aggregates and await aggregate_zone(session, account_id) == flt.timezone


async def table_for(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    by_tag: bool,
    by_assignee: bool,
    hourly: bool = False,
) -> Table | None:
    """The smallest aggregate table that answers the filter and grouping exactly, or None (the
    raw rows): days in the zone the aggregates count in, no contact tag (cells do not split by
    them) and at most one conversation tag (a conversation with two would count twice).
    `hourly`: among the tables of local hours (the heatmap's)."""
    if flt.contact_tags or len(flt.conversation_tags) > 1 or flt.drills_down:
        return None
    if not await in_zone(session, account_id, flt):
        return None
    agents, tag_filter = bool(flt.agent_emails) or by_assignee, bool(flt.conversation_tags)
    for cells in HOURLY_SMALLEST_FIRST if hourly else SMALLEST_FIRST:
        if cells.answers(agents=agents, tag_rows=by_tag, tag_filter=tag_filter):
            return cells.table
    return None


def _total(table: Table, name: str | ColumnElement[Any]) -> ColumnElement[int]:
    """The sum of a figure column (or of an expression of them) over the selected cells."""
    summed = table.c[name] if isinstance(name, str) else name
    return cast(func.coalesce(func.sum(summed), 0), BigInteger)


def _average(table: Table, total: str, count: str) -> ColumnElement[Any]:
    # The same float division the raw path's AVG(CAST(x AS FLOAT)) performs on exact sums.
    return cast(func.sum(table.c[total]), Float) / func.nullif(
        cast(func.sum(table.c[count]), Float), 0
    )


def figures(table: Table) -> list[ColumnElement[Any]]:
    """The Metrics columns (but the distinct counts and the percentiles) summed over a table's
    rows."""
    columns: list[ColumnElement[Any]] = []
    for metric in METRICS:
        if metric.kind is Kind.COUNT:
            columns.append(_total(table, metric.name).label(metric.name))
        elif metric.kind is Kind.AVERAGE:
            columns.append(_average(table, metric.total, metric.count).label(metric.name))
        elif metric.kind is Kind.DISTRIBUTION:
            columns.extend(_total(table, name).label(name) for name in metric.bin_columns)
    return columns


def figures_query(
    account_id: int, flt: Filter, table: Table, row_key: str | None, bucket: str | None
) -> Select[Any]:
    """Figures per row key (`source`, `assignee_id`, `tag_id` or None) and bucket (`day`,
    `week`, `hour_of_week` (a table of hours) or None), labelled `row_key` and `bucket_key`
    like the raw path's."""
    keys = _keys(table, row_key, bucket)
    query = select(*keys, *figures(table)).where(*_cells_of(account_id, flt, table))
    if row_key == "assignee_id":
        query = query.where(table.c.assignee_id != UNASSIGNED)
    return query.group_by(*keys) if keys else query


def _keys(table: Table, row_key: str | None, bucket: str | None) -> list[ColumnElement[Any]]:
    """The row key and bucket of a table's cells, labelled `row_key` and `bucket_key`."""
    keys: list[ColumnElement[Any]] = []
    if row_key is not None:
        keys.append(table.c[row_key].label("row_key"))
    day = day_of_hour(table.c.hour) if "hour" in table.c else table.c.day
    if bucket == "day":
        keys.append(day.label("bucket_key"))
    elif bucket == "week":
        keys.append(week_of_day(day).label("bucket_key"))
    elif bucket == "hour_of_week":
        keys.append(hour_of_week_of_hour(table.c.hour).label("bucket_key"))
    return keys


@dataclass(frozen=True)
class ContactCount:
    """A row of distinct contacts per row key and bucket, read like a statement's row."""

    _mapping: dict[str, Any]


async def contact_counts(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    table: Table,
    row_key: str | None,
    bucket: str | None,
    *conditions: ColumnElement[bool],
) -> list[ContactCount]:
    """Distinct contacts per row key and bucket (as `figures_query` groups them): the size of
    the union of the cells' contact sets (`ingest.contact_sets`). Exact: a contact is in the
    union exactly when one of its conversations counts in one of the cells."""
    keys = _keys(table, row_key, bucket)
    query = select(*keys, table.c.contacts).where(
        *_cells_of(account_id, flt, table), table.c.contacts.is_not(None), *conditions
    )
    if row_key == "assignee_id":
        query = query.where(table.c.assignee_id != UNASSIGNED)
    sets: dict[tuple[Any, ...], list[bytes]] = {}
    for row in (await session.execute(query)).all():
        sets.setdefault(tuple(row[:-1]), []).append(row[-1])
    names = [str(key.key) for key in keys]
    return [
        ContactCount(
            {
                **dict(zip(names, key, strict=True)),
                "distinct_contacts": union_size(blobs),
            }
        )
        for key, blobs in sets.items()
    ]


# A serialized `BitMap64` (pyroaring's portable format) is the number of its buckets of 32-bit
# values (8 bytes), then each bucket's high 32 bits (4 bytes) and its values' `BitMap`. A set
# of contact ids below 2**32 is one bucket of high bits 0: a `BitMap` after these 12 bytes.
LOW_IDS_ONLY = (1).to_bytes(8, "little") + (0).to_bytes(4, "little")


def union_size(blobs: list[bytes]) -> int:
    """The size of the union of these serialized contact sets. Read as 32-bit `BitMap`s when
    every id is below 2**32 (the agents report for a year unites 55,000 sets: 95 ms instead
    of 162 as `BitMap64`s), as `BitMap64`s otherwise."""
    if all(blob.startswith(LOW_IDS_ONLY) for blob in blobs):
        skip = len(LOW_IDS_ONLY)  # (a copy of each rest is faster to read than a memoryview)
        return len(BitMap.union(*(BitMap.deserialize(blob[skip:]) for blob in blobs)))
    return len(BitMap64.union(*map(BitMap64.deserialize, blobs)))


def _cells_of(account_id: int, flt: Filter, table: Table) -> list[ColumnElement[bool]]:
    """The account's cells of the filter's local days (or their hours) and lists."""
    days = flt.calendar
    first, last = days.day_number_of(flt.first_day), days.day_number_of(flt.last_day)
    if "hour" in table.c:
        in_range = [table.c.hour >= first * 24, table.c.hour < (last + 1) * 24]
    else:
        in_range = [table.c.day >= first, table.c.day <= last]
    return [table.c.account_id == account_id, *in_range, *_conditions(account_id, flt, table)]


def _conditions(account_id: int, flt: Filter, table: Table) -> list[ColumnElement[bool]]:
    """The filter's lists, on the cells' keys."""
    conditions: list[ColumnElement[bool]] = []
    if set(flt.sources) != set(SOURCES):
        conditions.append(table.c.source.in_(flt.sources))
    if flt.agent_emails:
        conditions.append(table.c.assignee_id.in_(_agent_ids(account_id, flt.agent_emails)))
    if flt.conversation_tags:
        tag = select(Tag.id).where(
            col(Tag.account_id) == account_id,
            col(Tag.kind) == "conversation",
            col(Tag.name_key) == flt.conversation_tags[0],
        )
        having = table.c.with_tag_id if table is TAG_PAIR_DAILY else table.c.tag_id
        conditions.append(having.in_(tag))
    return conditions


def _agent_ids(account_id: int, emails: tuple[str, ...]) -> Select[tuple[int | None]]:
    return select(Agent.id).where(col(Agent.account_id) == account_id, col(Agent.email).in_(emails))


async def sent_messages(
    session: AsyncSession, account_id: int, flt: Filter, agent_ids: list[int]
) -> dict[int, int] | None:
    """Outbound messages each agent sent during the range, from the aggregates; None when
    they do not count days in the filter's zone."""
    if not await in_zone(session, account_id, flt):
        return None
    days, table = flt.calendar, AGENT_MESSAGES
    rows = await session.execute(
        select(table.c.agent_id, _total(table, "sent_messages"))
        .where(
            table.c.account_id == account_id,
            table.c.agent_id.in_(agent_ids),
            table.c.day >= days.day_number_of(flt.first_day),
            table.c.day <= days.day_number_of(flt.last_day),
        )
        .group_by(table.c.agent_id)
    )
    return {agent_id: count for agent_id, count in rows.all() if count}


async def count_conversations(session: AsyncSession, account_id: int, flt: Filter) -> int | None:
    """How many conversations started in range and match the filter, from the aggregates;
    None when they cannot answer the filter. A drill-down to local weekdays and hours of the
    start reads the hourly cells (a conversation counts in the cell of its start hour); one to
    ratings, to answered or not, or to a range of seconds a run of bins holds, the figures that
    count those conversations (`_counted`)."""
    counted = _counted(flt)
    if counted is None:
        return None
    plain = _undrilled(flt)
    hourly = bool(flt.weekdays or flt.hours)
    table = await table_for(
        session, account_id, plain, by_tag=False, by_assignee=False, hourly=hourly
    )
    if table is None:
        return None
    query = select(_total(table, counted(table))).where(*_cells_of(account_id, plain, table))
    if hourly:
        query = query.where(*started_in_hours(flt, table))
    return int((await session.execute(query)).scalar_one())


def started_in_hours(flt: Filter, table: Table) -> list[ColumnElement[bool]]:
    """The cells of a table of hours in the filter's weekdays and hours."""
    return [hour_of_week_of_hour(table.c.hour).in_(flt.hours_of_week)]


def by_start_hours_only(flt: Filter) -> Filter | None:
    """The filter without its weekdays and hours when they are its only drill-downs (the
    conversation figures of the hourly cells answer it then); None otherwise."""
    if not (flt.weekdays or flt.hours):
        return None
    plain = replace(flt, weekdays=(), hours=())
    return None if plain.drills_down else plain


def _counted(flt: Filter) -> Callable[[Table], ColumnElement[Any]] | None:
    """What to sum over the cells to count the conversations the filter selects, when the
    cells' figures answer its drill-downs (besides weekdays and hours): every conversation;
    those whose latest rating is one of `ratings` (the rating distribution's bins); those with
    a first response or without (`answered`: `first_response_count` counts the conversations
    whose first response is measured); those whose first response or duration lies in a range
    that is a run of their distribution's bins (`_binned`). None when it drills down by
    anything else, or by two of those."""
    if _undrilled(flt).drills_down:
        return None
    chosen = [
        flt.ratings,
        flt.answered is not None,
        flt.first_response_seconds is not None,
        flt.duration_seconds is not None,
    ]
    if sum(map(bool, chosen)) > 1:
        return None
    columns = ["conversations"]
    if flt.ratings:
        columns = [f"rating_{rating}" for rating in sorted(set(flt.ratings))]
    elif flt.answered is not None:
        columns = ["first_response_count"]
    elif flt.first_response_seconds is not None:
        columns = _binned(flt.first_response_seconds, "first_response_distribution") or []
    elif flt.duration_seconds is not None:
        columns = _binned(flt.duration_seconds, "duration_distribution") or []
    if not columns:
        return None
    if flt.answered is False:
        return lambda t: t.c.conversations - t.c.first_response_count
    return lambda t: sum((t.c[name] for name in columns[1:]), start=t.c[columns[0]])


def _undrilled(flt: Filter) -> Filter:
    """The filter without the drill-downs the cells may count (`_counted`)."""
    return replace(
        flt,
        weekdays=(),
        hours=(),
        ratings=(),
        answered=None,
        first_response_seconds=None,
        duration_seconds=None,
    )


def _binned(bounds: SecondsRange, distribution: str) -> list[str] | None:
    """The bin columns of a distribution that hold exactly the (integer) seconds of a range:
    from min inclusive (none: the first bin; else one above a bin's bound) to max exclusive
    (none: the last bin; else one above a bin's bound). None when the range cuts a bin."""
    metric = BY_NAME[distribution]
    assert metric.bins is not None
    bounds_of = [one.key for one in metric.bins.bins][:-1]  # the last bin has none
    first = 0 if bounds.low is None else _after(bounds_of, bounds.low - 1)
    last = len(bounds_of) if bounds.high is None else _index(bounds_of, bounds.high - 1)
    if first is None or last is None or first > last:
        return None
    return list(metric.bin_columns[first : last + 1])


def _after(bounds: list[Any], bound: int) -> int | None:
    """The bin after the one `bound` closes."""
    found = _index(bounds, bound)
    return None if found is None else found + 1


def _index(bounds: list[Any], bound: int) -> int | None:
    """The bin `bound` closes."""
    return bounds.index(bound) if bound in bounds else None


async def clicks_answer(session: AsyncSession, account_id: int, flt: Filter) -> bool:
    """Whether the click aggregates answer the widget report: days in their zone, and no list
    selecting among the attributed conversations (their tags and assignee change over time)."""
    if flt.contact_tags or flt.conversation_tags or flt.agent_emails or flt.drills_down:
        return False
    if set(flt.sources) != set(SOURCES):
        return False
    return await in_zone(session, account_id, flt)


def click_counts_query(
    account_id: int, flt: Filter, dimension: str | None, by_day: bool
) -> Select[Any]:
    """Clicks and attributed conversations per value of a dimension (`button`, `referrer`,
    `utm_campaign`...) and/or local day, labelled `key` and `day` like the raw path's."""
    days, table = flt.calendar, CLICK_DAILY
    keys: list[ColumnElement[Any]] = []
    if dimension is not None:
        keys.append(table.c.key.label("key"))
    if by_day:
        keys.append(table.c.day.label("day"))
    query = select(
        *keys,
        _total(table, "clicks").label("clicks"),
        _total(table, "conversations").label("conversations"),
    ).where(
        table.c.account_id == account_id,
        # Every click is counted once in each dimension: the totals read the buttons'.
        table.c.dimension == (dimension or "button"),
        table.c.day >= days.day_number_of(flt.first_day),
        table.c.day <= days.day_number_of(flt.last_day),
    )
    return query.group_by(*keys) if keys else query
