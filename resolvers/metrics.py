"""The one code path that computes `Metrics` for every report, grouping and bucket.

Conversation metrics count the conversations that started in a bucket (the local day or week of
`started_at`) and match the filter; message metrics count the messages sent during a bucket
(`message.sent_at`) whose conversation matches the filter and the row, wherever it started.
Both are single GROUP BY statements; Python only merges the two halves and fills empty buckets.
When the daily aggregates kept at ingestion can answer the filter exactly (resolvers/aggregates.py),
one statement over them replaces both, and distinct contacts, which do not add up across days,
come from the union of their cells' contact sets.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, make_dataclass
from datetime import date
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Float, Select, Table, case, cast, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation, ConversationTag, Message
from models.enums import Status
from models.metrics import METRICS, NAMES, Kind, Metric, Rows
from models.sql import listed, unindexed
from resolvers import aggregates
from resolvers.filters import Filter, conversation_conditions, started_in_range
from resolvers.percentiles import percentile, values_of_list


def _metrics_class() -> Any:
    return make_dataclass(
        "Metrics",
        [(metric.name, metric.python_type, field(default=metric.default)) for metric in METRICS],
        frozen=True,
        namespace={
            "__doc__": "The figures of one bucket or row, one attribute per metric of "
            "`models.metrics`; averages are None when there is nothing to average.",
            "__module__": __name__,
        },
    )


if TYPE_CHECKING:

    class Metrics:
        """(What mypy knows of the class made from the registry below.)"""

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

else:
    Metrics = _metrics_class()


EMPTY = Metrics()


@dataclass(frozen=True)
class MetricsBucket:
    """The metrics of one local day or ISO week; `start` is its first local day in the range."""

    start: date
    metrics: Metrics


MESSAGE_FIELDS = frozenset(metric.name for metric in METRICS if metric.rows is Rows.MESSAGES)
CONTACT_FIELDS = frozenset(metric.name for metric in METRICS if metric.kind is Kind.DISTINCT)
PERCENTILE_FIELDS = frozenset(m.name for m in METRICS if m.kind is Kind.PERCENTILE)
# What the raw statement over conversations answers (percentiles have statements of their own).
CONVERSATION_FIELDS = frozenset(NAMES) - MESSAGE_FIELDS - PERCENTILE_FIELDS


class Half(Enum):
    """The statements behind a `Metrics`: skip one when no field of it is wanted. Distinct
    contacts and percentiles are parts of their own: only the raw rows answer them."""

    CONVERSATIONS = "conversations"
    MESSAGES = "messages"
    CONTACTS = "contacts"
    PERCENTILES = "percentiles"


BOTH_HALVES = frozenset(Half)
CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]


def halves_for(metric_fields: Iterable[str]) -> frozenset[Half]:
    """The halves needed to answer these Metrics fields (python names)."""
    wanted = set(metric_fields)
    halves = set()
    if wanted & (CONVERSATION_FIELDS - CONTACT_FIELDS):
        halves.add(Half.CONVERSATIONS)
    if wanted & MESSAGE_FIELDS:
        halves.add(Half.MESSAGES)
    if wanted & CONTACT_FIELDS:
        halves.add(Half.CONTACTS)
    if wanted & PERCENTILE_FIELDS:
        halves.add(Half.PERCENTILES)
    return frozenset(halves)


class Grouping(Enum):
    """What the rows of a report are: one row, the source, the current assignee or a tag."""

    NONE = "none"
    SOURCE = "source"
    ASSIGNEE = "assignee"
    TAG = "tag"
    AD = "ad"  # the click-to-WhatsApp ad (referral source id) of the first message


class Period(Enum):
    """The buckets of a row: the whole range, each local day, each ISO week, or each local
    hour of the week (the heatmap: the range's Mondays 09:00-10:00 together, ...)."""

    RANGE = "range"
    DAY = "day"
    WEEK = "week"
    HOUR_OF_WEEK = "hour_of_week"


# (row key, bucket number): the row key is None for Grouping.NONE, the bucket None for RANGE.
Key = tuple[Any, int | None]
DayKey = tuple[Any, int]  # (row key, local day number)


async def compute_metrics(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    grouping: Grouping = Grouping.NONE,
    period: Period = Period.RANGE,
    halves: frozenset[Half] = BOTH_HALVES,
    raw: "RawReads | None" = None,
) -> dict[Key, Metrics]:
    """Metrics per (row key, bucket number) for the rows and buckets that have any figure.
    `raw`: what the report's parts share of the raw rows (`RawReads`)."""
    # Hours of the week come from the tables of local hours, which have no row per agent or tag.
    hourly = period is Period.HOUR_OF_WEEK

    async def table_for(answered: Filter, hourly: bool) -> Table | None:
        return await aggregates.table_for(
            session,
            account_id,
            answered,
            by_tag=grouping is Grouping.TAG,
            by_assignee=grouping is Grouping.ASSIGNEE,
            hourly=hourly,
        )

    table = None
    if grouping is not Grouping.AD and not (hourly and grouping is not Grouping.NONE):
        table = await table_for(flt, hourly)
    parts: list[tuple[Sequence[Any], frozenset[str]]] = []
    if table is not None:
        if halves & {Half.CONVERSATIONS, Half.MESSAGES}:
            query: Select[Any] = aggregates.figures_query(
                account_id, flt, table, AGGREGATE_ROW_KEYS[grouping], AGGREGATE_BUCKETS[period]
            )
            parts.append(((await session.execute(query)).all(), aggregates.FIELDS))
        if Half.CONTACTS in halves:
            counts = await aggregates.contact_counts(
                session,
                account_id,
                flt,
                table,
                AGGREGATE_ROW_KEYS[grouping],
                AGGREGATE_BUCKETS[period],
            )
            parts.append((counts, CONTACT_FIELDS))
    else:
        # Drilled down to the hours conversations started: their figures from the hourly cells
        # (by the hour each started), their messages from the raw rows.
        plain = aggregates.by_start_hours_only(flt) if grouping is not Grouping.AD else None
        started = None
        if plain is not None and Half.CONVERSATIONS in halves:
            started = await table_for(plain, True)
        if plain is not None and started is not None:
            query = aggregates.figures_query(
                account_id, plain, started, AGGREGATE_ROW_KEYS[grouping], AGGREGATE_BUCKETS[period]
            ).where(*aggregates.started_in_hours(flt, started))
            parts.append(((await session.execute(query)).all(), aggregates.CONVERSATION_FIELDS))
            if Half.CONTACTS in halves:
                counts = await aggregates.contact_counts(
                    session,
                    account_id,
                    plain,
                    started,
                    AGGREGATE_ROW_KEYS[grouping],
                    AGGREGATE_BUCKETS[period],
                    *aggregates.started_in_hours(flt, started),
                )
                parts.append((counts, CONTACT_FIELDS))
        elif halves & {Half.CONVERSATIONS, Half.CONTACTS}:
            query = _conversation_query(account_id, flt, grouping, period)
            parts.append(((await session.execute(query)).all(), CONVERSATION_FIELDS))
        if Half.MESSAGES in halves:
            rows = await _raw_messages(session, account_id, flt, grouping, period, raw)
            parts.append((rows, MESSAGE_FIELDS))
    if Half.PERCENTILES in halves:
        rows = await _percentiles(session, account_id, flt, grouping, period, raw)
        parts.append((rows, PERCENTILE_FIELDS))
    return _merge(parts, grouping, period)


class RawReads:
    """What a report reads of the raw rows once for all its parts (its totals, days, weeks
    and sources), per local day and row key (per source for a report without one), where each
    part would read the range again (about a second per part for 90 days at a million
    conversations):
    - the message figures, where a filter the aggregates do not answer (a drill-down to start
      hours) sends them to the raw rows: counts, so a part's are sums of these rows;
    - the values of the percentiles (`resolvers.percentiles`), which no aggregate keeps: sorted
      lists, of which a part's buckets take the values of their days.
    One per report: never kept beyond it."""

    def __init__(self) -> None:
        self._messages: dict[tuple[int, Filter, Grouping], Sequence[Any]] = {}
        self._values: dict[tuple[int, Filter, Grouping], dict[DayKey, list[list[int]]]] = {}

    async def messages_per_day(
        self, session: AsyncSession, account_id: int, flt: Filter, grouping: Grouping
    ) -> Sequence[Any]:
        key = (account_id, flt, grouping)
        rows = self._messages.get(key)
        if rows is None:
            rows = self._messages[key] = await _read_messages(
                session, account_id, flt, grouping, Period.DAY
            )
        return rows

    async def values_per_day(
        self, session: AsyncSession, account_id: int, flt: Filter, grouping: Grouping
    ) -> dict[DayKey, list[list[int]]]:
        """Per (row key, local day), the sorted values of each of `PERCENTILES_BY_VALUE`."""
        key = (account_id, flt, grouping)
        lists = self._values.get(key)
        if lists is None:
            query = _value_query(account_id, flt, grouping, Period.DAY)
            lists = self._values[key] = {
                (row.row_key, row.bucket_key): _value_lists(row)
                for row in (await session.execute(query)).all()
            }
        return lists


# The row key of the statement a grouping's message figures are summed from.
FINEST = {
    Grouping.NONE: Grouping.SOURCE,
    Grouping.SOURCE: Grouping.SOURCE,
    Grouping.ASSIGNEE: Grouping.ASSIGNEE,
    Grouping.TAG: Grouping.TAG,
}


async def _raw_messages(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    grouping: Grouping,
    period: Period,
    kept: RawReads | None,
) -> Sequence[Any]:
    """The message figures per (row key, bucket) from the raw rows, summed from the report's
    `RawReads` when it has one and the buckets are days, weeks or the range (else from its
    statements, which may give a key a row each)."""
    finest = _finest_kept(kept, grouping, period)
    rows: Sequence[Any]
    key_of: Callable[[Any], Key]
    if kept is None or finest is None:
        rows = await _read_messages(session, account_id, flt, grouping, period)
        key_of = partial(_split_key, grouping=grouping, period=period)
    else:
        rows = await kept.messages_per_day(session, account_id, flt, finest)
        of_day = _key_of_day(flt, grouping, period)

        def day_key(row: Any) -> Key:
            return of_day(row.row_key, row.bucket_key)

        key_of = day_key

    sums: dict[Key, dict[str, int]] = {}
    for row in rows:
        figures = row._mapping
        summed = sums.setdefault(key_of(row), dict.fromkeys(MESSAGE_FIELDS, 0))
        for name in MESSAGE_FIELDS:
            summed[name] += figures[name] or 0
    return [
        _Summed({"row_key": row, "bucket_key": bucket, **summed})
        for (row, bucket), summed in sums.items()
    ]


async def _read_messages(
    session: AsyncSession, account_id: int, flt: Filter, grouping: Grouping, period: Period
) -> list[Any]:
    """The rows of `_message_queries` (a key may have a row in each: sum them)."""
    rows: list[Any] = []
    for query in _message_queries(account_id, flt, grouping, period):
        rows.extend((await session.execute(query)).all())
    return rows


def _finest_kept(kept: "RawReads | None", grouping: Grouping, period: Period) -> Grouping | None:
    """The row key of what the report's `RawReads` keeps per day that these rows and buckets
    are made of; None when they are read on their own (no `RawReads`, an ad per row, hours of
    the week)."""
    if kept is None or period is Period.HOUR_OF_WEEK:
        return None
    return FINEST.get(grouping)


def _key_of_day(flt: Filter, grouping: Grouping, period: Period) -> Callable[[Any, int], Key]:
    """The (row key, bucket) that a row key's local day, as `RawReads` keeps it, counts in: the
    day itself, its ISO week, or the range; the row key dropped for a report without one."""
    days = flt.calendar

    def key(row_key: Any, day: int) -> Key:
        row = row_key if grouping is not Grouping.NONE else None
        if period is Period.DAY:
            return row, day
        return row, days.week_number_of(days.day_of(day)) if period is Period.WEEK else None

    return key


@dataclass(frozen=True)
class _Summed:
    """Summed figures per row key and bucket, read like a statement's row."""

    _mapping: dict[str, Any]


# How the aggregate tables name a grouping's row key and a period's bucket.
AGGREGATE_ROW_KEYS = {
    Grouping.NONE: None,
    Grouping.SOURCE: "source",
    Grouping.ASSIGNEE: "assignee_id",
    Grouping.TAG: "tag_id",
}
AGGREGATE_BUCKETS = {
    Period.RANGE: None,
    Period.DAY: "day",
    Period.WEEK: "week",
    Period.HOUR_OF_WEEK: "hour_of_week",
}


async def whole_range(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    halves: frozenset[Half],
    raw: RawReads | None = None,
) -> Metrics:
    """The filter's metrics over its whole range (one row)."""
    found = await compute_metrics(session, account_id, flt, halves=halves, raw=raw)
    return found.get((None, None), EMPTY)


async def buckets(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    period: Period,
    halves: frozenset[Half],
    raw: RawReads | None = None,
) -> tuple[MetricsBucket, ...]:
    """The filter's zero-filled daily or weekly buckets (one row)."""
    found = await compute_metrics(session, account_id, flt, period=period, halves=halves, raw=raw)
    return series(found, flt, period)


def series(
    found: Mapping[Key, Metrics], flt: Filter, period: Period, row: Any = None
) -> tuple[MetricsBucket, ...]:
    """The zero-filled daily or weekly buckets of one row, ascending."""
    days = flt.calendar
    if period is Period.DAY:
        return tuple(
            MetricsBucket(day, found.get((row, days.day_number_of(day)), EMPTY))
            for day in days.days
        )
    if period is Period.WEEK:
        return tuple(
            MetricsBucket(start, found.get((row, days.week_number_of(start)), EMPTY))
            for start in days.weeks
        )
    raise ValueError(f"no series for {period}")


def _as_float(value: Any) -> ColumnElement[float]:
    # Averages over floats: SQLite and PostgreSQL (double precision) then return the same value,
    # where PostgreSQL's AVG over integers would return a numeric.
    return func.avg(cast(value, Float))


def _raw(metric: Metric, rows: Table) -> ColumnElement[Any]:
    """The metric over raw rows, as one aggregate function of a GROUP BY."""
    if metric.kind is Kind.COUNT:
        when = metric.counted
        return func.count() if when is None else func.count(case((when(rows), 1)))
    assert metric.value is not None
    if metric.kind is Kind.AVERAGE and metric.weight is not None:
        return cast(func.sum(metric.value(rows)), Float) / func.nullif(
            cast(func.sum(metric.weight(rows)), Float), 0
        )
    if metric.kind is Kind.AVERAGE:
        return _as_float(metric.value(rows))
    return func.count(metric.value(rows).distinct())


def _bins(metric: Metric, rows: Table) -> list[ColumnElement[int]]:
    """A distribution over raw rows: one count per bin, labelled as its figure column."""
    assert metric.value is not None and metric.bins is not None
    value = metric.value(rows)
    return [
        func.count(case((one.holds(value), 1))).label(name)
        for name, one in zip(metric.bin_columns, metric.bins.bins, strict=True)
    ]


def _conversation_aggregates() -> list[ColumnElement[Any]]:
    return [
        column
        for metric in METRICS
        if metric.name in CONVERSATION_FIELDS
        for column in (
            _bins(metric, CONVERSATION)
            if metric.kind is Kind.DISTRIBUTION
            else [_raw(metric, CONVERSATION).label(metric.name)]
        )
    ]


def _message_aggregates() -> list[ColumnElement[Any]]:
    return [
        _raw(metric, MESSAGE).label(metric.name)
        for metric in METRICS
        if metric.name in MESSAGE_FIELDS
    ]


def _by_value() -> tuple[tuple[Metric, ...], ...]:
    """The percentile metrics, those of one value together (one list of values serves them)."""
    found: dict[Any, list[Metric]] = {}
    for metric in METRICS:
        if metric.kind is Kind.PERCENTILE:
            found.setdefault(metric.value, []).append(metric)
    return tuple(tuple(metrics) for metrics in found.values())


PERCENTILES_BY_VALUE = _by_value()


def _value_query(account_id: int, flt: Filter, grouping: Grouping, period: Period) -> Select[Any]:
    """Per row key and bucket, the values of each percentile's value as one list
    (`models.sql.listed`, labelled `values_<n>` in `PERCENTILES_BY_VALUE` order)."""
    keys = _keys(flt, grouping, period, col(Conversation.started_at))
    lists = []
    for n, metrics in enumerate(PERCENTILES_BY_VALUE):
        assert metrics[0].value is not None
        lists.append(listed(metrics[0].value(CONVERSATION)).label(f"values_{n}"))
    query = (
        select(*keys, *lists)
        .select_from(Conversation)
        .where(*conversation_conditions(account_id, flt), *started_in_range(flt))
    )
    return _grouped(query, account_id, grouping, keys)


def _value_lists(row: Any) -> list[list[int]]:
    """A `_value_query` row's sorted values of each of `PERCENTILES_BY_VALUE`."""
    return [values_of_list(row._mapping[f"values_{n}"]) for n in range(len(PERCENTILES_BY_VALUE))]


async def _percentiles(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    grouping: Grouping,
    period: Period,
    kept: "RawReads | None",
) -> list["_Summed"]:
    """The percentile metrics per (row key, bucket), exact (`resolvers.percentiles`): from the
    lists of the report's `RawReads` per local day when it has one and the buckets are days,
    weeks or the range, else from a statement of their own."""
    finest = _finest_kept(kept, grouping, period)
    lists: dict[Key, list[list[list[int]]]] = {}
    if kept is None or finest is None:
        query = _value_query(account_id, flt, grouping, period)
        for row in (await session.execute(query)).all():
            lists[_split_key(row, grouping, period)] = [[one] for one in _value_lists(row)]
    else:
        key_of = _key_of_day(flt, grouping, period)
        for (row_key, day), per_value in (
            await kept.values_per_day(session, account_id, flt, finest)
        ).items():
            found = lists.setdefault(key_of(row_key, day), [[] for _ in PERCENTILES_BY_VALUE])
            for n, values in enumerate(per_value):
                found[n].append(values)
    return [
        _Summed(
            {
                "row_key": row_key,
                "bucket_key": bucket_key,
                **{
                    metric.name: percentile(per_value[n], metric.fraction)
                    for n, metrics in enumerate(PERCENTILES_BY_VALUE)
                    for metric in metrics
                },
            }
        )
        for (row_key, bucket_key), per_value in lists.items()
    ]


def _row_key(grouping: Grouping) -> Any:
    """The column a grouping splits rows by; None for a single row."""
    return {
        Grouping.NONE: None,
        Grouping.SOURCE: col(Conversation.source),
        Grouping.ASSIGNEE: col(Conversation.assignee_id),
        Grouping.TAG: col(ConversationTag.tag_id),
        Grouping.AD: col(Conversation.referral_source_id),
    }[grouping]


def _bucket_key(flt: Filter, period: Period, instant: Any) -> ColumnElement[int] | None:
    if period is Period.DAY:
        return flt.calendar.day_number(instant)
    if period is Period.WEEK:
        return flt.calendar.week_number(instant)
    if period is Period.HOUR_OF_WEEK:
        return flt.calendar.hour_of_week(instant)
    return None


def _keys(
    flt: Filter, grouping: Grouping, period: Period, instant: Any, *, unordered: bool = False
) -> list[Any]:
    """The labelled GROUP BY keys: the row key, then the bucket number of `instant`.
    `unordered`: no index may be chosen for giving the rows in row key order (SQLite would
    walk every assigned conversation, or every tag link, of the account to skip a sort)."""
    keys = []
    row, bucket = _row_key(grouping), _bucket_key(flt, period, instant)
    if row is not None:
        keys.append((unindexed(row) if unordered else row).label("row_key"))
    if bucket is not None:
        keys.append(bucket.label("bucket_key"))
    return keys


def _grouped(
    query: Select[Any],
    account_id: int,
    grouping: Grouping,
    keys: list[Any],
    *,
    from_conversations: bool = False,
) -> Select[Any]:
    """Joins and conditions of a grouping, then GROUP BY its keys. `from_conversations`: the
    statement must be driven by the conversations its other conditions find, so no term of
    the grouping may lead SQLite elsewhere (to every tag link of the account, or to every
    assigned conversation through the assignee index)."""
    if grouping is Grouping.TAG:
        # One joined row per tag: a conversation with two tags counts in both rows.
        if from_conversations:  # the links looked up per conversation, never walked first
            joined = (col(ConversationTag.conversation_id) == unindexed(CONVERSATION.c.id)) & (
                col(ConversationTag.account_id) == col(Conversation.account_id)
            )
        else:
            joined = (col(ConversationTag.conversation_id) == col(Conversation.id)) & (
                col(ConversationTag.account_id) == account_id
            )
        query = query.join(ConversationTag, joined)
    if grouping is Grouping.ASSIGNEE:
        assignee = CONVERSATION.c.assignee_id
        query = query.where((unindexed(assignee) if from_conversations else assignee).is_not(None))
    if grouping is Grouping.AD:
        query = query.where(col(Conversation.referral_source_id).is_not(None))
    return query.group_by(*keys) if keys else query


def _conversation_query(
    account_id: int,
    flt: Filter,
    grouping: Grouping,
    period: Period,
    figures: list[ColumnElement[Any]] | None = None,
) -> Select[Any]:
    keys = _keys(flt, grouping, period, col(Conversation.started_at))
    query = (
        select(*keys, *(_conversation_aggregates() if figures is None else figures))
        .select_from(Conversation)
        .where(*conversation_conditions(account_id, flt), *started_in_range(flt))
    )
    return _grouped(query, account_id, grouping, keys)


def _message_query(
    account_id: int,
    flt: Filter,
    grouping: Grouping,
    period: Period,
    *started: ColumnElement[bool],
) -> Select[Any]:
    """The message figures per row key and bucket, of the messages sent in range whose
    conversation matches the filter (and the conditions `started` on it)."""
    keys = _keys(flt, grouping, period, col(Message.sent_at), unordered=bool(started))
    days = flt.calendar
    # Found from their conversations: no index may find the messages by the instant they were
    # sent, nor a conversation by the id a message names.
    sent = unindexed(MESSAGE.c.sent_at) if started else MESSAGE.c.sent_at
    conversation_id = unindexed(CONVERSATION.c.id) if started else col(Conversation.id)
    query = (
        select(*keys, *_message_aggregates())
        .select_from(Message)
        .join(Conversation, conversation_id == col(Message.conversation_id))
        .where(
            col(Message.account_id) == account_id,
            sent >= days.start,
            sent < days.end,
            *conversation_conditions(account_id, flt),
            *started,
        )
    )
    return _grouped(query, account_id, grouping, keys, from_conversations=bool(started))


def _message_queries(
    account_id: int, flt: Filter, grouping: Grouping, period: Period
) -> list[Select[Any]]:
    """The statements whose rows, summed per key, are the message figures. A filter that
    drills down (to start hours, figures, statuses...) keeps few conversations, and the
    messages are found from them rather than the conversation of every message sent in range
    looked up: those of the conversations started in range, and those of the conversations
    started before it whose last message is in it or after (a conversation holds no message
    before its start or after its last: `ingest.rules`, `ingest.conversations.resettle`).
    The second finds them by their last message (`ix_conversation_open`, every status)."""
    if not flt.drills_down:
        return [_message_query(account_id, flt, grouping, period)]
    days, start = flt.calendar, col(Conversation.started_at)
    return [
        _message_query(account_id, flt, grouping, period, start >= days.start, start < days.end),
        _message_query(
            account_id,
            flt,
            grouping,
            period,
            col(Conversation.status).in_(list(Status)),
            col(Conversation.last_message_at) >= days.start,
            unindexed(CONVERSATION.c.started_at) < days.start,
        ),
    ]


def _split_key(row: Any, grouping: Grouping, period: Period) -> Key:
    mapping = row._mapping
    return (
        mapping["row_key"] if grouping is not Grouping.NONE else None,
        mapping["bucket_key"] if period is not Period.RANGE else None,
    )


def _merge(
    parts: Sequence[tuple[Sequence[Any], frozenset[str]]], grouping: Grouping, period: Period
) -> dict[Key, Metrics]:
    """One Metrics per key from the statements' rows, each giving the fields it names."""
    halves: dict[Key, dict[str, Any]] = {}
    for rows, names in parts:
        for row in rows:
            values = halves.setdefault(_split_key(row, grouping, period), {})
            values.update({name: _value(row._mapping, name) for name in names})
    return {key: Metrics(**values) for key, values in halves.items() if _has_figures(values)}


BIN_COLUMNS = {metric.name: metric.bin_columns for metric in METRICS if metric.bins is not None}


def _value(row: Mapping[str, Any], name: str) -> Any:
    """A metric from a statement's row: a distribution from its bins' columns."""
    columns = BIN_COLUMNS.get(name)
    if columns is None:
        return row[name]
    return tuple(int(row[column] or 0) for column in columns)


def _has_figures(values: Mapping[str, Any]) -> bool:
    # Without GROUP BY the database answers one row of zeros (or nulls) when nothing matched.
    if any(values.get(name) for name in ("conversations", "messages", *CONTACT_FIELDS)):
        return True
    return any(values.get(name) is not None for name in PERCENTILE_FIELDS)
