"""Report aggregates kept exact as data arrives: deltas at ingestion, rebuilds from raw rows.

The aggregate tables (models.tables: `daily_figures`, `source_daily_figures`, `tag_daily_figures`,
`tag_agent_daily_figures`, `tag_pair_daily_figures`, `agent_daily_messages`) hold sums per local
day in the zone named by `aggregate_state` (no row: not built, the reports read raw rows). A
conversation counts on the local day it started and each of its messages on the day it was
sent, in the cell of the conversation's current source and assignee (and of each of its tags,
and each pair of its tags). The heatmap's tables (`hourly_figures`, `agent_hourly_figures`,
`tag_hourly_figures`) hold the same sums per local hour, by the hour of the start and of
each message.

`click_daily_figures` counts website button clicks per local day and value of each dimension
(button name, referrer, each UTM field) with the conversations attributed to them: a click adds
one click to each dimension's cell, its attribution (permanent) one conversation.

`aggregated_conversation` and `aggregated_conversation_tag` record what the aggregates count for
each conversation: its cell, its figures, its tags and the messages counted so far (ids up to
`last_message_id`; messages are only ever added to a conversation, and one at a time under the
contact's lock). `sync_conversations` moves the aggregates from that record to the conversation's
current rows with one statement per table — (current contribution - recorded contribution)
summed per cell, added by INSERT ... ON CONFLICT DO UPDATE — then records the current state.
Ingestion calls it in the transaction of every change (`ingest.conversations.recompute_figures`
and the auto-close UPDATE), so the delta is exact whatever changed: assignment, tags, closing,
rating, a message out of order. `rebuild_aggregates` recomputes an account from its raw rows
with the same contribution queries.
"""

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Executable,
    FromClause,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateTable
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import contact_sets, service_levels, window
from ingest.contacts import insert_for
from ingest.transactions import account_settings, forget_account_settings
from models import Account, Conversation, ConversationTag, Message, WidgetButton, WidgetClick
from models.calendar import (
    DAY_SECONDS,
    Periods,
    day_number,
    hour_number,
    integer,
    local_day,
    zone_periods,
)
from models.cells import CLICK_DIMENSIONS, CONVERSATION_CELLS, Cells
from models.db import now, transaction
from models.enums import Direction
from models.metrics import CONVERSATION_FIGURES, MESSAGE_FIGURES
from models.sql import (
    Prepared,
    keyed_in_account,
    of_conversation,
    one_of,
    unindexed,
    value_of,
    values_of,
)
from models.tables import (
    AgentDailyMessages,
    AggregatedConversation,
    AggregatedConversationTag,
    AggregateState,
    ClickDailyFigures,
    DailyFigures,
    SourceDailyFigures,
    TagAgentDailyFigures,
    TagDailyFigures,
    TagPairDailyFigures,
)

# The figure columns (`models.metrics`): sums over the conversations, counts of the messages.
CONVERSATION_SUMS = tuple(figure.name for figure in CONVERSATION_FIGURES)
MESSAGE_COUNTS = tuple(figure.name for figure in MESSAGE_FIGURES)
FIGURES = CONVERSATION_SUMS + MESSAGE_COUNTS

# A rebuild finds the zone's offsets only around the instants the account holds.
REBUILD_WINDOW_SECONDS = 1 << 22  # about 48 days
SYNC_CHUNK = 500  # conversations per statement: bound parameters stay far below the limits

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
CONVERSATION_TAG: Table = ConversationTag.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
ACCOUNT: Table = Account.__table__  # type: ignore[attr-defined]
DAILY: Table = DailyFigures.__table__  # type: ignore[attr-defined]
SOURCE_DAILY: Table = SourceDailyFigures.__table__  # type: ignore[attr-defined]
TAG_DAILY: Table = TagDailyFigures.__table__  # type: ignore[attr-defined]
TAG_AGENT_DAILY: Table = TagAgentDailyFigures.__table__  # type: ignore[attr-defined]
TAG_PAIR_DAILY: Table = TagPairDailyFigures.__table__  # type: ignore[attr-defined]
AGENT_MESSAGES: Table = AgentDailyMessages.__table__  # type: ignore[attr-defined]
LEDGER: Table = AggregatedConversation.__table__  # type: ignore[attr-defined]
LEDGER_TAG: Table = AggregatedConversationTag.__table__  # type: ignore[attr-defined]
STATE: Table = AggregateState.__table__  # type: ignore[attr-defined]
CLICK_DAILY: Table = ClickDailyFigures.__table__  # type: ignore[attr-defined]
WIDGET_CLICK: Table = WidgetClick.__table__  # type: ignore[attr-defined]
WIDGET_BUTTON: Table = WidgetButton.__table__  # type: ignore[attr-defined]
# Every table an account's aggregates live in (what a rebuild replaces).
AGGREGATE_TABLES = (
    *(cells.table for cells in CONVERSATION_CELLS),
    AGENT_MESSAGES,
    CLICK_DAILY,
    LEDGER_TAG,
    LEDGER,
)

Selection = Callable[[Any, Any], ColumnElement[bool]]  # (conversation id, account id) -> WHERE


# --- contributions ---------------------------------------------------------------------------


def current_figures(c: Table) -> dict[str, ColumnElement[Any]]:
    """A conversation's figures from its row, as the aggregates sum them."""
    return {figure.name: figure.contribution(c) for figure in CONVERSATION_FIGURES}


@dataclass(frozen=True)
class Side:
    """One side of a delta: where conversations count (start day, source, assignee, tags) and
    with which figures, read from their current rows (+) or from the aggregates' record (-)."""

    conversation: Table  # conversation | aggregated_conversation
    conversation_id: ColumnElement[int]
    tags: Table  # conversation_tag | aggregated_conversation_tag
    day: ColumnElement[int]
    hour: ColumnElement[int]
    assignee_id: ColumnElement[int]
    figures: dict[str, ColumnElement[Any]]
    counted: ColumnElement[bool] | None  # the messages counted; None: all of them
    where: ColumnElement[bool]
    sign: int


def current_side(periods: Periods, selection: Selection) -> Side:
    c = CONVERSATION
    return Side(
        conversation=c,
        conversation_id=c.c.id,
        tags=CONVERSATION_TAG,
        day=day_number(c.c.started_at, periods),
        hour=hour_number(c.c.started_at, periods),
        assignee_id=func.coalesce(c.c.assignee_id, integer(0)),
        figures=current_figures(c),
        counted=None,
        where=selection(c.c.id, c.c.account_id),
        sign=1,
    )


def recorded_side(selection: Selection) -> Side:
    ledger = LEDGER
    return Side(
        conversation=ledger,
        conversation_id=ledger.c.conversation_id,
        tags=LEDGER_TAG,
        day=ledger.c.day,
        hour=ledger.c.hour,
        assignee_id=ledger.c.assignee_id,
        figures={name: -ledger.c[name] for name in CONVERSATION_SUMS},
        counted=MESSAGE.c.id <= ledger.c.last_message_id,
        where=selection(ledger.c.conversation_id, ledger.c.account_id),
        sign=-1,
    )


def _cells(
    aggregate: Cells,
    side: Side,
    rows: FromClause,
    day: ColumnElement[int],
    hour: ColumnElement[int],
) -> tuple[FromClause, list[ColumnElement[Any]]]:
    """The rows joined to the tags the aggregate splits by, and the cell's key columns (`day`
    and `hour`: the local day and hour of what counts, the start or the message)."""
    columns: dict[str, ColumnElement[Any]] = {
        "day": day,
        "hour": hour,
        "source": side.conversation.c.source,
        "assignee_id": side.assignee_id,
    }
    if aggregate.tagged:
        rows = rows.join(side.tags, _of_side(side.tags, side))
        columns["tag_id"] = side.tags.c.tag_id
    if "with_tag_id" in aggregate.keys:  # every pair of the conversation's tags, (t, t) included
        other = side.tags.alias("with_tag")
        rows = rows.join(other, _of_side(other, side))
        columns["with_tag_id"] = other.c.tag_id
    return rows, [columns[key].label(key) for key in aggregate.keys]


def _of_side(rows: FromClause, side: Side) -> ColumnElement[bool]:
    """`rows` (messages, tag links) of the side's conversation."""
    return of_conversation(rows, side.conversation.c.account_id, side.conversation_id)


def conversation_part(aggregate: Cells, side: Side) -> Select[Any]:
    """The conversations' figures in the cells of their start day (one row each)."""
    rows, keys = _cells(aggregate, side, side.conversation, side.day, side.hour)
    return (
        select(
            *keys,
            *(value.label(name) for name, value in side.figures.items()),
            *(integer(0).label(name) for name in MESSAGE_COUNTS),
        )
        .select_from(rows)
        .where(side.where)
    )


def message_part(
    aggregate: Cells, side: Side, periods: Periods, counted: bool | None = None
) -> Select[Any]:
    """The conversations' messages in the cells of the day each was sent (one row each).
    On the current side, `counted`: only the messages the record counts (True) or only those
    it does not count yet (False); None: all of them."""
    m = MESSAGE
    joined = m.join(side.conversation, _of_side(m, side))
    if counted is not None:
        # Conversation, record, then the messages in a range of ids (SQLite's index on the
        # messages' conversation ends with their rowid): the others are never read.
        assert side.counted is None, "the recorded side holds only counted messages"
        same = of_conversation(LEDGER, side.conversation.c.account_id, side.conversation_id)
        last = LEDGER.c.last_message_id
        if counted:
            range_ = m.c.id <= last
            joined = side.conversation.join(LEDGER, same)
        else:
            range_ = m.c.id > func.coalesce(last, integer(0))
            joined = side.conversation.outerjoin(LEDGER, same)
        joined = joined.join(m, and_(_of_side(m, side), range_))
    rows, keys = _cells(
        aggregate,
        side,
        joined,
        day_number(m.c.sent_at, periods),
        hour_number(m.c.sent_at, periods),
    )
    query = (
        select(
            *keys,
            *(integer(0).label(name) for name in CONVERSATION_SUMS),
            *(
                (figure.contribution(m) * integer(side.sign)).label(figure.name)
                for figure in MESSAGE_FIGURES
            ),
        )
        .select_from(rows)
        .where(side.where)
    )
    return query if side.counted is None else query.where(side.counted)


# An account: its id, rendered inline (a rebuild), or `BOUND_ACCOUNT`, bound at execution, in
# the statements ingestion compiles once for every account (`models.sql.Prepared`).
AccountKey = int | ColumnElement[int]
BOUND_ACCOUNT: ColumnElement[int] = value_of("account_id", BigInteger())


def _account(account: AccountKey) -> ColumnElement[int]:
    return integer(account) if isinstance(account, int) else account


def summed(aggregate: Cells, account: AccountKey, parts: Sequence[Select[Any]]) -> Select[Any]:
    """The parts summed per cell, without the cells they leave unchanged, in key order (so that
    concurrent writers lock the rows they share in one order)."""
    return rolled_up(aggregate, account, union_all(*parts).subquery("contribution"))


def rolled_up(aggregate: Cells, account: AccountKey, rows: FromClause) -> Select[Any]:
    """`rows` (with the aggregate's keys, maybe more, and every figure) summed per cell of the
    aggregate, as `summed` does."""
    keys = [rows.c[key] for key in aggregate.keys]
    return (
        select(
            _account(account).label("account_id"),
            *keys,
            *(cast(func.sum(rows.c[name]), BigInteger).label(name) for name in FIGURES),
        )
        .group_by(*keys)
        .having(or_(*(func.sum(rows.c[name]) != 0 for name in FIGURES)))
        .order_by(*keys)
    )


def _insert(session: AsyncSession, table: Table) -> Any:
    """The engine's own INSERT, which has ON CONFLICT on SQLite and PostgreSQL."""
    return insert_for(session.get_bind().dialect.name, table)


def _adding(dialect: str, table: Table, keys: Sequence[str], rows: Select[Any]) -> Executable:
    """INSERT the rows; a cell that exists gets their figures added to its own."""
    columns = [column.name for column in rows.selected_columns]
    statement = insert_for(dialect, table).from_select(columns, rows)
    figures = [name for name in columns if name not in keys and name != "account_id"]
    return statement.on_conflict_do_update(
        index_elements=["account_id", *keys],
        set_={name: table.c[name] + statement.excluded[name] for name in figures},
    )


def agent_messages(
    account: AccountKey, periods: Periods, where: ColumnElement[bool], new_only: bool
) -> Select[Any]:
    """Outbound messages per local day and agent; `new_only`: those the record does not count."""
    m, ledger = MESSAGE, LEDGER
    day = day_number(m.c.sent_at, periods)
    query = select(
        _account(account).label("account_id"),
        day.label("day"),
        m.c.agent_id.label("agent_id"),
        func.count().label("sent_messages"),
    ).where(
        where,
        m.c.account_id == _account(account),
        m.c.direction == Direction.OUTBOUND,
        # Not a range of the index led by (account_id, agent_id): found by conversation.
        unindexed(m.c.agent_id).is_not(None),
    )
    if new_only:
        same = of_conversation(ledger, m.c.account_id, m.c.conversation_id)
        query = query.select_from(m.outerjoin(ledger, same)).where(
            m.c.id > func.coalesce(ledger.c.last_message_id, integer(0))
        )
    return query.group_by(day, m.c.agent_id).order_by(day, m.c.agent_id)


def record(periods: Periods, selection: Selection, messages: ColumnElement[bool]) -> Select[Any]:
    """What the aggregates count for each selected conversation, from its current rows
    (`messages`: a condition that holds for the selected conversations' messages)."""
    c, m = CONVERSATION, MESSAGE
    # One grouped pass over the messages, never a MAX per conversation (which a planner without
    # statistics answers by walking the whole primary key backwards).
    last = (
        select(m.c.account_id, m.c.conversation_id, func.max(m.c.id).label("id"))
        .where(messages)
        .group_by(m.c.account_id, m.c.conversation_id)
        .subquery("last_message")
    )
    same = of_conversation(last, c.c.account_id, c.c.id)
    return (
        select(
            c.c.id.label("conversation_id"),
            c.c.account_id,
            day_number(c.c.started_at, periods).label("day"),
            hour_number(c.c.started_at, periods).label("hour"),
            c.c.source,
            func.coalesce(c.c.assignee_id, 0).label("assignee_id"),
            *(value.label(name) for name, value in current_figures(c).items()),
            func.coalesce(last.c.id, 0).label("last_message_id"),
        )
        .select_from(c.outerjoin(last, same))
        .where(selection(c.c.id, c.c.account_id))
    )


# --- maintenance at ingestion ----------------------------------------------------------------


DEFERRED = "aggregates_deferred"


def defer_sync(session: AsyncSession) -> None:
    """From now on in this session, `sync_conversations` only notes the conversations; the
    caller brings them all up to date at once with `sync_deferred` before it commits (the group
    commit writer: one delta per table per transaction, however many changes it holds)."""
    session.info[DEFERRED] = {}


async def sync_deferred(session: AsyncSession) -> int:
    """Bring every conversation noted since `defer_sync` up to date; returns how many."""
    pending: dict[int, dict[int, int | None]] = session.info.get(DEFERRED) or {}
    session.info[DEFERRED] = {}
    for account_id in sorted(pending):
        await _sync_now(session, account_id, pending[account_id])
    return sum(len(moments) for moments in pending.values())


async def sync_conversations(
    session: AsyncSession,
    account_id: int,
    conversation_ids: Iterable[int],
    now: int | None = None,
) -> None:
    """Bring the office-hours, service-level and 24-hour-window columns of these conversations
    up to date as of `now` (`ingest.service_levels`, `ingest.window`; None: the current
    instant), then the aggregates to their current rows, in the caller's transaction (or,
    after `defer_sync`, note them for `sync_deferred`). The aggregates are left alone while
    the account's are not built."""
    deferred: dict[int, dict[int, int | None]] | None = session.info.get(DEFERRED)
    moments: dict[int, int | None] = dict.fromkeys(conversation_ids, now)
    if deferred is not None:
        # Each conversation as of the moment of its latest change, as if every change had
        # been its own transaction (an auto-close pass's clock is not a webhook's).
        deferred.setdefault(account_id, {}).update(moments)
        return
    await _sync_now(session, account_id, moments)


async def measure_written(session: AsyncSession, account_id: int, moment: int) -> None:
    """Rows written in bulk bypass ingestion (`ingest.demo`, the tests' factories): derive for
    every conversation of the account what `sync_conversations` derives as of `moment` (office
    hours, service levels, the 24-hour window); the caller then rebuilds the aggregates."""
    await service_levels.measure_account(session, account_id)
    await window.measure_account(session, account_id, moment)


async def _sync_now(session: AsyncSession, account_id: int, moments: dict[int, int | None]) -> None:
    """`moments`: each conversation's id and the instant it is brought up to date as of (None:
    the current one)."""
    current = now()
    by_moment: dict[int, list[int]] = {}
    for conversation_id, at in moments.items():
        by_moment.setdefault(current if at is None else at, []).append(conversation_id)
    for moment, some in sorted(by_moment.items()):
        some.sort()
        await service_levels.settle(session, account_id, some, moment)
        await window.settle(session, account_id, some, moment)
    zone = await _zone_for_writing(session, account_id)
    if zone is None:
        return
    ids = sorted(moments)
    for start in range(0, len(ids), SYNC_CHUNK):
        await _sync_chunk(session, account_id, zone, ids[start : start + SYNC_CHUNK])


async def _sync_chunk(session: AsyncSession, account_id: int, zone: str, ids: list[int]) -> None:
    dialect = session.get_bind().dialect.name
    bound = {"ids": ids}
    probe = (await session.execute(PROBE, {**bound, "account_id": account_id})).one()
    low, high, tagged = probe[0], probe[1], bool(probe[2])
    if low is None or high is None:
        return
    periods = zone_periods(zone, [(low, high)])
    before = await contact_sets.recorded(session, account_id, ids=ids, tagged=tagged)
    # What the statements record (`record`), read before they run.
    after = await contact_sets.current(session, account_id, periods, ids=ids, tagged=tagged)
    moved = contact_sets.moved(before, after)
    if dialect == "sqlite":
        await session.execute(text(CREATE_DELTA))
    for statement in _sync_statements(dialect, _cache_key(periods), tagged):
        await statement.execute(session, ids=ids, moved=moved, account_id=account_id)
    await contact_sets.move(session, account_id, before, after)


# The chunk's conversation ids, bound as one list whatever their number, so that a statement's
# SQL text never changes (`models.sql`).
IDS = values_of("ids", BigInteger())
# Those of them whose cell changed since the record (`contact_sets.moved`).
MOVED = values_of("moved", BigInteger())


def _cache_key(periods: Periods) -> Periods:
    """The periods as `day_number` reads them: the first one's start is never compared."""
    return ((0, periods[0][1]), *periods[1:])


@lru_cache(maxsize=256)
def _sync_statements(dialect: str, periods: Periods, tagged: bool) -> tuple[Prepared, ...]:
    """The statements that move a chunk of conversations (`:ids`) of an account
    (`:account_id`) from the record to their current rows, built and compiled once per zone
    periods and engine (every account of a zone shares them: compiling them takes about a
    third of a second), and run as SQL text with the ids and the account bound
    (`models.sql.Prepared`)."""
    return tuple(Prepared(statement) for statement in _delta_statements(dialect, periods, tagged))


def _delta_statements(dialect: str, periods: Periods, tagged: bool) -> tuple[Executable, ...]:

    def selection(conversation_id: Any, account: Any) -> ColumnElement[bool]:
        # Both columns of the key (account_id, id), which no planner passes over for an index
        # led by account_id alone (on SQLite, a unique index on (id, account_id)).
        return and_(account == BOUND_ACCOUNT, one_of(conversation_id, IDS))

    def moved(conversation_id: Any, account: Any) -> ColumnElement[bool]:
        return and_(account == BOUND_ACCOUNT, one_of(conversation_id, MOVED))

    current, recorded = current_side(periods, selection), recorded_side(selection)

    def delta(aggregate: Cells) -> Select[Any]:
        # A conversation whose cell is unchanged keeps its counted messages where they are:
        # only its new messages are added. Those of a conversation that moved (`:moved`) are
        # all taken out of the recorded cells and put in the current ones.
        parts = [
            conversation_part(aggregate, current),
            message_part(aggregate, current, periods, counted=False),
            conversation_part(aggregate, recorded),
            message_part(aggregate, current_side(periods, moved), periods, counted=True),
            message_part(aggregate, recorded_side(moved), periods),
        ]
        return summed(aggregate, BOUND_ACCOUNT, parts)

    # The delta is read once per finest cell (untagged, and by tag if any conversation of the
    # chunk has a tag) and rolled up into each table it answers: reading the conversations
    # and messages is what costs, not summing a few hundred cells again.
    bases = [(FINEST, _delta_base(dialect, FINEST, delta(FINEST)))]
    if tagged:
        bases.append((FINEST_TAGGED, _delta_base(dialect, FINEST_TAGGED, delta(FINEST_TAGGED))))
    statements: list[Executable] = [
        statement for _, (statement, _) in bases if statement is not None
    ]
    for aggregate in CONVERSATION_CELLS:
        if aggregate.tagged and not tagged:
            continue
        base = next((rows for finest, (_, rows) in bases if finest.answers_for(aggregate)), None)
        rows = delta(aggregate) if base is None else rolled_up(aggregate, BOUND_ACCOUNT, base)
        statements.append(_adding(dialect, aggregate.table, aggregate.keys, rows))
    chunk_messages = and_(
        MESSAGE.c.account_id == BOUND_ACCOUNT, one_of(MESSAGE.c.conversation_id, IDS)
    )
    new_messages = agent_messages(BOUND_ACCOUNT, periods, chunk_messages, new_only=True)
    statements.append(_adding(dialect, AGENT_MESSAGES, ("day", "agent_id"), new_messages))
    rows = record(periods, selection, chunk_messages)
    recording = insert_for(dialect, LEDGER).from_select(
        [column.name for column in rows.selected_columns], rows
    )
    statements.append(
        recording.on_conflict_do_update(
            index_elements=["account_id", "conversation_id"],
            set_={
                column.name: recording.excluded[column.name]
                for column in rows.selected_columns
                if column.name not in ("account_id", "conversation_id")
            },
        )
    )
    current_tags = select(
        CONVERSATION_TAG.c.conversation_id, CONVERSATION_TAG.c.tag_id, CONVERSATION_TAG.c.account_id
    ).where(
        CONVERSATION_TAG.c.account_id == BOUND_ACCOUNT,
        one_of(CONVERSATION_TAG.c.conversation_id, IDS),
    )
    recorded_tags = and_(
        LEDGER_TAG.c.account_id == BOUND_ACCOUNT, one_of(LEDGER_TAG.c.conversation_id, IDS)
    )
    tag_columns = ["conversation_id", "tag_id", "account_id"]
    if dialect == "postgresql":
        # One round trip: every step reads the tables as they were before the statement, as each
        # statement above reads them before the next one runs (the record last), so the result
        # is the same. The record of tags keeps its rows that still hold and gains the new ones.
        if tagged:
            kept = select(CONVERSATION_TAG.c.tag_id).where(
                of_conversation(
                    CONVERSATION_TAG, LEDGER_TAG.c.account_id, LEDGER_TAG.c.conversation_id
                ),
                CONVERSATION_TAG.c.tag_id == LEDGER_TAG.c.tag_id,
            )
            statements.insert(
                -1,
                delete(LEDGER_TAG).where(recorded_tags, ~kept.exists()),
            )
            statements.insert(
                -1,
                insert_for(dialect, LEDGER_TAG)
                .from_select(tag_columns, current_tags)
                .on_conflict_do_nothing(),
            )
        *steps, last = statements
        return (last.add_cte(*(step.cte(f"step_{n}") for n, step in enumerate(steps))),)  # type: ignore[attr-defined]
    statements.insert(0, delete(DELTA))  # the last chunk's rows
    if tagged:
        statements.append(delete(LEDGER_TAG).where(recorded_tags))
        statements.append(LEDGER_TAG.insert().from_select(tag_columns, current_tags))
    return tuple(statements)


# The finest cells of the delta: every conversation table's keys are among those of one of
# them (but the tag pairs'), so each table's delta is a roll-up of theirs.
FINEST = Cells(DAILY, ("day", "hour", "source", "assignee_id"))
FINEST_TAGGED = Cells(TAG_DAILY, ("day", "hour", "source", "assignee_id", "tag_id"))
# SQLite: the finest deltas of the chunk (a temporary table of the writing connection; every
# chunk empties it first). PostgreSQL reads them from a CTE of the one statement.
DELTA = Table(
    "wareports_delta",
    MetaData(),
    Column("account_id", BigInteger),
    *(Column(key, BigInteger if key != "source" else String) for key in FINEST_TAGGED.keys),
    *(Column(name, BigInteger) for name in FIGURES),
    prefixes=["TEMPORARY"],
)
CREATE_DELTA = str(CreateTable(DELTA, if_not_exists=True).compile(dialect=sqlite.dialect()))


def _delta_base(
    dialect: str, finest: Cells, rows: Select[Any]
) -> tuple[Executable | None, FromClause]:
    """Where the tables read a finest delta from: (the statement that fills it, if any, and
    the rows). Untagged rows have no `tag_id`."""
    if dialect == "postgresql":
        return None, rows.cte(f"delta_{len(finest.keys)}")
    fill = DELTA.insert().from_select([column.name for column in rows.selected_columns], rows)
    tagged = DELTA.c.tag_id.is_not(None) if finest.tagged else DELTA.c.tag_id.is_(None)
    return fill, select(DELTA).where(tagged).subquery(f"delta_{len(finest.keys)}")


# At most this many zones (those most accounts count in) are compiled at startup.
WARM_ZONES = 8


async def warm_up(engine: AsyncEngine) -> threading.Thread:
    """Compile the delta and status statements of the zones the accounts' aggregates count in
    (the most common first), for the offsets in force now, in a thread of their own (started
    here, returned): otherwise the first transaction of each zone, and the first to tag a
    conversation, compile them while holding the event loop (a third of a second each; every
    other request then waits)."""
    count = func.count()  # the accounts' zones (the aggregates of an account count in its own)
    query = (
        select(ACCOUNT.c.timezone)
        .group_by(ACCOUNT.c.timezone)
        .order_by(count.desc(), ACCOUNT.c.timezone)
        .limit(WARM_ZONES)
    )
    async with engine.connect() as connection:
        zones = list((await connection.scalars(query)).all())
    thread = threading.Thread(
        target=_compile_for, args=(engine.dialect, zones, now()), name="warm-up", daemon=True
    )
    thread.start()
    return thread


def _compile_for(dialect: Dialect, zones: list[str], moment: int) -> None:
    for zone in zones:
        periods = _cache_key(zone_periods(zone, [(moment - DAY_SECONDS, moment)]))
        prepared = _status_statements(dialect.name, periods) + tuple(
            statement
            for tagged in (False, True)
            for statement in _sync_statements(dialect.name, periods, tagged)
        )
        for statement in prepared:
            statement.pieces(dialect)


# --- delivery statuses ---------------------------------------------------------------------------

# The figures a message's delivery status decides (`Metric.statuses`), and the statuses a message
# can hold before a new one (never `failed`: it wins over every other).
STATUS_FIGURES = tuple(figure for figure in MESSAGE_FIGURES if figure.statuses)
EARLIER_STATUSES = ("sent", "delivered", "read", "played")


@dataclass(frozen=True)
class StatusMove:
    """A message whose delivery status changed: its id, when it was sent, and the status it
    held before (None: none) and holds now."""

    message_id: int
    sent_at: int
    before: str | None
    now: str


def moves_figures(before: str | None, now: str) -> bool:
    """Whether moving from `before` to `now` changes any figure a status decides."""
    return any((before in f.statuses) != (now in f.statuses) for f in STATUS_FIGURES)


async def move_statuses(
    session: AsyncSession, account_id: int, moves: Sequence[StatusMove]
) -> None:
    """After these messages' statuses changed (in the caller's transaction), move the figures
    the statuses decide, in the cells the aggregates count each message in: the recorded cell
    of its conversation, on the day it was sent. A message the record does not count yet (id
    above `last_message_id`) is left to the next sync, which counts it with its status then.
    Does nothing while the account's aggregates are not built."""
    moved = [move for move in moves if moves_figures(move.before, move.now)]
    zone = await _zone_for_writing(session, account_id) if moved else None
    if zone is None:
        return
    periods = zone_periods(zone, [(min(m.sent_at for m in moved), max(m.sent_at for m in moved))])
    bound: dict[str, Any] = {"message_ids": [move.message_id for move in moved]}
    for status in EARLIER_STATUSES:
        bound[f"was_{status}"] = [move.message_id for move in moved if move.before == status]
    dialect = session.get_bind().dialect.name
    for statement in _status_statements(dialect, _cache_key(periods)):
        await statement.execute(session, **bound, account_id=account_id)


MESSAGE_IDS = values_of("message_ids", BigInteger())


@lru_cache(maxsize=256)
def _status_statements(dialect: str, periods: Periods) -> tuple[Prepared, ...]:
    """Per aggregate table, the messages `:message_ids` of an account (`:account_id`) moved
    from the figures of the status each held before (`:was_<status>`: the ids that held it;
    none of them: no status) to those of their current row, summed per recorded cell
    (compiled once per zone periods and engine, `models.sql.Prepared`)."""
    return tuple(Prepared(statement) for statement in _status_deltas(dialect, periods))


def _status_deltas(dialect: str, periods: Periods) -> tuple[Executable, ...]:
    m, ledger = MESSAGE, LEDGER
    before = case(
        *(
            (one_of(m.c.id, values_of(f"was_{status}", BigInteger())), literal(status))
            for status in EARLIER_STATUSES
        ),
        else_=null(),
    )
    earlier = _Row(direction=m.c.direction, status=before)
    side = recorded_side(lambda conversation_id, account: account == BOUND_ACCOUNT)
    # The messages are found by id: their account's term is `unindexed` here and in the join,
    # from which SQLite would derive `message.account_id = ?` (a walk of the account's
    # messages by an index led by it, for a list of four ids or more).
    of_message = of_conversation(ledger, unindexed(m.c.account_id), m.c.conversation_id)
    statements: list[Executable] = []
    for aggregate in CONVERSATION_CELLS:
        rows, keys = _cells(
            aggregate,
            side,
            m.join(ledger, of_message),
            day_number(m.c.sent_at, periods),
            hour_number(m.c.sent_at, periods),
        )
        figures = [
            (
                figure.contribution(m) - figure.contribution(earlier)  # type: ignore[arg-type]
                if figure.statuses
                else integer(0)
            ).label(figure.name)
            for figure in MESSAGE_FIGURES
        ]
        moved = (
            select(*keys, *(integer(0).label(name) for name in CONVERSATION_SUMS), *figures)
            .select_from(rows)
            .where(
                side.where,
                keyed_in_account(m.c.account_id, BOUND_ACCOUNT),
                one_of(m.c.id, MESSAGE_IDS),
                m.c.id <= ledger.c.last_message_id,
            )
        )
        rows_moved = summed(aggregate, BOUND_ACCOUNT, [moved])
        statements.append(_adding(dialect, aggregate.table, aggregate.keys, rows_moved))
    if dialect == "postgresql":  # one round trip: each statement writes a table of its own
        *steps, last = statements
        return (last.add_cte(*(step.cte(f"step_{n}") for n, step in enumerate(steps))),)  # type: ignore[attr-defined]
    return tuple(statements)


class _Row:
    """Stands for a message row in a figure's contribution: `.c.<column>` are expressions."""

    def __init__(self, **columns: ColumnElement[Any]) -> None:
        self.c = SimpleNamespace(**columns)


def _probe_statement() -> Select[Any]:
    """The earliest and latest instant (start or message) of the conversations `:ids`, and
    whether any has a tag, now or in the record."""
    c, m = CONVERSATION, MESSAGE
    account: ColumnElement[int] = bindparam("account_id")
    instants = union_all(
        select(c.c.started_at.label("at")).where(
            keyed_in_account(c.c.account_id, account), one_of(c.c.id, IDS)
        ),
        select(m.c.sent_at.label("at")).where(
            m.c.account_id == account, one_of(m.c.conversation_id, IDS)
        ),
    ).subquery()
    tags = union_all(
        *(
            select(links.c.tag_id).where(
                links.c.account_id == account, one_of(links.c.conversation_id, IDS)
            )
            for links in (CONVERSATION_TAG, LEDGER_TAG)
        )
    ).subquery()
    tagged = select(func.count()).select_from(select(tags).limit(1).subquery()).scalar_subquery()
    return select(func.min(instants.c.at), func.max(instants.c.at), tagged)


PROBE = _probe_statement()


async def _zone_for_writing(session: AsyncSession, account_id: int) -> str | None:
    """The zone of the account's aggregates, read once per transaction, the account row held
    FOR KEY SHARE (`ingest.transactions.account_settings`)."""
    return (await account_settings(session, account_id)).aggregate_zone


# --- rebuilding ------------------------------------------------------------------------------


async def rebuild_aggregates(session: AsyncSession, account_id: int) -> None:
    """Recompute the account's aggregates from its raw rows, in its current zone, in the
    caller's transaction (after bulk writes that bypass ingestion, or a change of zone)."""
    zone = await session.scalar(
        select(ACCOUNT.c.timezone).where(ACCOUNT.c.id == account_id).with_for_update()
    )
    if zone is None:
        raise LookupError(f"no account {account_id}")
    for table in AGGREGATE_TABLES:
        await session.execute(delete(table).where(table.c.account_id == account_id))
    periods = zone_periods(zone, await _occupied_windows(session, account_id))
    if periods:
        await _fill(session, account_id, periods)
        await _fill_clicks(session, account_id, periods)
    await session.execute(delete(STATE).where(STATE.c.account_id == account_id))
    await session.execute(
        STATE.insert().values(account_id=account_id, timezone=zone, rebuilt_at=now())
    )
    forget_account_settings(session, account_id)


async def _fill(session: AsyncSession, account_id: int, periods: Periods) -> None:
    def selection(_conversation_id: Any, account: Any) -> ColumnElement[bool]:
        return account == account_id

    side = current_side(periods, selection)
    for aggregate in CONVERSATION_CELLS:
        parts = [conversation_part(aggregate, side), message_part(aggregate, side, periods)]
        rows = summed(aggregate, account_id, parts)
        await session.execute(
            aggregate.table.insert().from_select(
                [column.name for column in rows.selected_columns], rows
            )
        )
    sent = agent_messages(account_id, periods, MESSAGE.c.account_id == account_id, new_only=False)
    await session.execute(
        AGENT_MESSAGES.insert().from_select([c.name for c in sent.selected_columns], sent)
    )
    rows = record(periods, selection, MESSAGE.c.account_id == account_id)
    await session.execute(
        LEDGER.insert().from_select([c.name for c in rows.selected_columns], rows)
    )
    tags = select(
        CONVERSATION_TAG.c.conversation_id, CONVERSATION_TAG.c.tag_id, CONVERSATION_TAG.c.account_id
    ).where(CONVERSATION_TAG.c.account_id == account_id)
    await session.execute(
        LEDGER_TAG.insert().from_select(["conversation_id", "tag_id", "account_id"], tags)
    )
    await contact_sets.fill(session, account_id)


async def _fill_clicks(session: AsyncSession, account_id: int, periods: Periods) -> None:
    """Each dimension's cells, grouped in SQL; the key hashes are added here."""
    clicks = WIDGET_CLICK.join(WIDGET_BUTTON, WIDGET_BUTTON.c.id == WIDGET_CLICK.c.button_id)
    day = day_number(WIDGET_CLICK.c.clicked_at, periods).label("day")
    for dimension in CLICK_DIMENSIONS:
        value = WIDGET_BUTTON.c.name if dimension == "button" else WIDGET_CLICK.c[dimension]
        key = value.label("key")
        query = (
            select(
                day,
                key,
                func.count().label("clicks"),
                func.count(WIDGET_CLICK.c.conversation_id).label("conversations"),
            )
            .select_from(clicks)
            .where(WIDGET_CLICK.c.account_id == account_id)
            .group_by(day, key)
        )
        cells = [
            _click_cell(account_id, dimension, row.day, row.key, row.clicks, row.conversations)
            for row in (await session.execute(query)).all()
        ]
        if cells:
            await session.execute(CLICK_DAILY.insert(), cells)


def _click_cell(
    account_id: int, dimension: str, day: int, key: str | None, clicks: int, conversations: int
) -> dict[str, Any]:
    """A `click_daily_figures` row."""
    return {
        "account_id": account_id,
        "dimension": dimension,
        "day": day,
        "key_hash": key_hash(key),
        "key": key,
        "clicks": clicks,
        "conversations": conversations,
    }


def key_hash(key: str | None) -> str:
    """What stands for a click dimension's value in the key ('' for none given)."""
    return "" if key is None else hashlib.sha256(key.encode()).hexdigest()[:32]


async def count_click(
    session: AsyncSession, click: WidgetClick, button_name: str, *, attributed: bool = False
) -> None:
    """Add a new click (or, `attributed`, the conversation it was just attributed to) to the
    click aggregates, in the caller's transaction. Nothing while they are not built."""
    zone = await _zone_for_writing(session, click.account_id)
    if zone is None:
        return
    day = local_day(click.clicked_at, ZoneInfo(zone))
    values = {"button": button_name} | {name: getattr(click, name) for name in CLICK_DIMENSIONS[1:]}
    clicks, conversations = (0, 1) if attributed else (1, 0)
    cells = [
        _click_cell(click.account_id, dimension, day, values[dimension], clicks, conversations)
        for dimension in CLICK_DIMENSIONS
    ]
    statement = _insert(session, CLICK_DAILY).values(cells)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "dimension", "day", "key_hash"],
        set_={
            name: CLICK_DAILY.c[name] + statement.excluded[name]
            for name in ("clicks", "conversations")
        },
    )
    await session.execute(statement)


async def _occupied_windows(session: AsyncSession, account_id: int) -> list[tuple[int, int]]:
    """The windows of REBUILD_WINDOW_SECONDS that hold a conversation start or a message."""
    width = integer(REBUILD_WINDOW_SECONDS)
    c, m, w = CONVERSATION, MESSAGE, WIDGET_CLICK
    numbers = union_all(
        select((c.c.started_at // width).label("window")).where(c.c.account_id == account_id),
        select((m.c.sent_at // width).label("window")).where(m.c.account_id == account_id),
        select((w.c.clicked_at // width).label("window")).where(w.c.account_id == account_id),
    ).subquery()
    found = (await session.scalars(select(numbers.c.window).distinct())).all()
    return [
        (int(n) * REBUILD_WINDOW_SECONDS, (int(n) + 1) * REBUILD_WINDOW_SECONDS - 1) for n in found
    ]


async def rebuild_aggregates_of(engine: AsyncEngine, account_id: int) -> None:
    """`rebuild_aggregates` in a transaction of its own, then fresh planner statistics."""
    async with transaction(engine) as session:
        await rebuild_aggregates(session, account_id)
    await analyze_aggregates(engine)


async def analyze_aggregates(engine: AsyncEngine) -> None:
    """Fresh PostgreSQL statistics for the aggregate tables after a rebuild replaced their rows:
    autovacuum may take minutes to notice, and meanwhile the planner, counting on a handful of
    rows, joins the tags by nested loops (a year's tag-filtered summary: 1.2 s instead of 60 ms).
    SQLite plans these small tables well without them."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as connection:
        for table in AGGREGATE_TABLES:
            await connection.execute(text(f"ANALYZE {table.name}"))
        await connection.commit()


async def forget_aggregates(engine: AsyncEngine, account_id: int) -> None:
    """Mark the account's aggregates as not built (before writes that bypass ingestion): the
    reports read raw rows and ingestion leaves the aggregates alone until a rebuild."""
    async with transaction(engine) as session:
        await session.execute(delete(STATE).where(STATE.c.account_id == account_id))


async def start_aggregates(session: AsyncSession, account_id: int, zone: str) -> None:
    """Mark a new, empty account's aggregates as built: ingestion keeps them from now on."""
    await session.execute(
        STATE.insert().values(account_id=account_id, timezone=zone, rebuilt_at=now())
    )
