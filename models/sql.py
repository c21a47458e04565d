"""`one_of(column, values)`: membership in a list bound as one parameter, for statements that
run with lists of any length (ingestion's look-ups by wamid, phone, contact or conversation).

On PostgreSQL `column IN (:a, :b, ...)` is new SQL text for every length of the list, which the
server prepares and plans anew (a round trip and a plan per execution; the prepared statement
cache thrashes): there the list is one array parameter, `column = ANY(:values)`, and the text
never changes. SQLite prepares statements cheaply and plans `IN (?, ?, ...)` on an index better
than any list-valued form (`json_each`), so there it stays an expanding `IN`.
"""

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Boolean, String, and_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from models import inline_sqlite


class ValueList(TypeDecorator[list[Any]]):
    """A list of values as one parameter: an array on PostgreSQL (see `one_of`)."""

    impl = String
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(self.item)

    def process_bind_param(self, value: Iterable[Any] | None, dialect: Dialect) -> Any:
        return [] if value is None else list(value)


def values_of(name: str, item: TypeEngine[Any]) -> BindParameter[list[Any]]:
    """A bound list of `item` values named `name` (pass any iterable at execution)."""
    return bindparam(name, type_=ValueList(item))


class one_of(FunctionElement[bool]):
    """`column` equals one of the bound list's values: `one_of(column, values_of(name, type))`."""

    type = Boolean()
    name = "one_of"
    inherit_cache = True
    # A condition itself: never compared with 1 where booleans are not native (SQLite).
    _is_implicitly_boolean = True

    def __init__(self, column: ColumnElement[Any], values: BindParameter[Any]) -> None:
        super().__init__(column, values)


@compiles(one_of)
def _one_of_expanded(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = list(element.clauses)
    assert isinstance(values, BindParameter) and isinstance(values.type, ValueList)
    if PREPARED in kw:
        return f"{compiler.process(column, **kw)} IN ({kw[PREPARED].placeholder(values.key)})"
    expanded = bindparam(values.key, expanding=True, type_=values.type.item)
    return compiler.process(column.in_(expanded), **kw)


@compiles(one_of, "postgresql")
def _one_of_array(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = list(element.clauses)
    if PREPARED in kw:
        values_sql = kw[PREPARED].placeholder(values.key)
    else:
        values_sql = compiler.process(values, **kw)
    return f"{compiler.process(column, **kw)} = ANY({values_sql})"


class unindexed(FunctionElement[Any]):
    """`column`, which no index may serve on SQLite: there it is written `+column` (SQLite's own
    way to rule a term out of index selection; the term still filters the rows), elsewhere as
    it is (Citus routes on a plain `account_id`).

    Without planner statistics SQLite picks an index by its terms alone, and a term on a
    column no look-up needs can lead it into a walk of the whole account:
    - `account_id = ? AND id IN (?, ?, ...)` (two ids or more) goes through an index that leads
      with `account_id` and covers the columns read (400 µs at 5,000 conversations, growing
      with the account): see `keyed_in_account`;
    - `account_id = ? AND conversation_id IN (...) AND agent_id IS NOT NULL` (the new messages
      of a chunk of conversations, by agent) takes `agent_id IS NOT NULL` as a range of the
      index on (account_id, agent_id, sent_at) and reads every agent message of the account
      (5.4 ms a transaction at 20,000 messages, against 1.1 through the conversations')."""

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return compiler.process(column, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"+{compiler.process(column, **kw)}"


def keyed_in_account(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """`column = value`, for a look-up by the table's integer primary key within an account
    (`keyed_in_account(conversation.c.account_id, account) & one_of(conversation.c.id, ids)`):
    the account's term is `unindexed`, so that SQLite finds the rows by their key."""
    return unindexed(column) == value


class value_of(FunctionElement[Any]):
    """A bound scalar named `name` in a `Prepared` statement (the account's id), passed at
    execution like its lists: one text serves every account. Cast on PostgreSQL, where a
    parameter alone in a select list has no type."""

    name = "value_of"
    inherit_cache = True

    def __init__(self, key: str, item: TypeEngine[Any]) -> None:
        super().__init__(bindparam(key, type_=item))
        self.type = item


@compiles(value_of)
def _value_of(element: value_of, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    assert isinstance(value, BindParameter)
    if PREPARED not in kw:
        return compiler.process(value, **kw)
    placeholder = kw[PREPARED].scalar(value.key)
    if kw[PREPARED].dialect != "postgresql":
        return placeholder
    return f"CAST({placeholder} AS {compiler.dialect.type_compiler_instance.process(value.type)})"


PREPARED = "wareports_prepared"  # the compile keyword of `Prepared`: its lists' placeholders
_LIST = "\x00"  # around a list's name where its items go, in a text with expanded lists
JOINED_TEXTS = 256  # texts with expanded lists a `Prepared` keeps (one per list length)


@dataclass
class _Placeholders:
    """The lists of one `Prepared` text, in order, and how the text names them."""

    dialect: str
    names: list[str] = field(default_factory=list)
    scalars: set[str] = field(default_factory=set)

    def placeholder(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        if self.dialect == "postgresql":
            return f"${self.names.index(name) + 1}"  # asyncpg's numbered parameters
        return f"{_LIST}{name}{_LIST}"  # expanded at execution

    def scalar(self, name: str) -> str:
        """A scalar's placeholder: numbered with the lists on PostgreSQL, named on SQLite."""
        self.scalars.add(name)
        if self.dialect == "postgresql":
            return self.placeholder(name)
        return f":{name}"


class Prepared:
    """A large statement run often in which only `one_of` lists change (the aggregates' deltas
    of a chunk of conversations), compiled once per engine to SQL text and executed as that
    text (`exec_driver_sql`).

    SQLAlchemy's execution of such a statement hashes its whole cache key, builds every bound
    parameter and, on SQLite, renders the expanded `IN` lists into the text again, each time:
    about half a millisecond for a delta of 24 kB of SQL, more than the SQL itself. Here every
    value but the lists is rendered inline as a literal (they are the statement's own: ids,
    names, zone periods). Each list is one array parameter on PostgreSQL (one text); on SQLite
    it is expanded, `IN (:ids_0, :ids_1, ...)`, a text per length joined from the compiled
    pieces and kept prepared by sqlite3's statement cache: a list bound as one value
    (`json_each`) leaves SQLite's planner guessing its length, and with statistics it then
    walks an account's tags rather than look up a few conversations' (measured: one sender's
    transactions 8 -> 12 ms). Only for statements whose rows are not read (no result types
    are applied)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._pieces: dict[str, tuple[list[str], _Placeholders]] = {}
        self._joined: dict[tuple[int, ...], str] = {}

    def pieces(self, dialect: Dialect) -> tuple[list[str], _Placeholders]:
        """The SQL text for `dialect` in pieces (the even ones SQL, the odd ones the names of
        the lists expanded between them), and its parameters' names in placeholder order."""
        found = self._pieces.get(dialect.name)
        if found is None:
            placeholders = _Placeholders(dialect.name)
            compiled = self.statement.compile(  # type: ignore[attr-defined]
                dialect=dialect, compile_kwargs={"literal_binds": True, PREPARED: placeholders}
            )
            found = self._pieces[dialect.name] = (str(compiled).split(_LIST), placeholders)
        return found

    async def execute(self, session: AsyncSession, **values: Any) -> None:
        """Run the text with `values`: an iterable for each list, a value for each scalar."""
        connection = await session.connection()
        pieces, placeholders = self.pieces(connection.dialect)
        scalars = {name: values[name] for name in placeholders.scalars}
        lists = {name: list(values[name]) for name in placeholders.names if name not in scalars}
        if connection.dialect.name == "postgresql":
            ordered = (scalars[n] if n in scalars else lists[n] for n in placeholders.names)
            await connection.exec_driver_sql(pieces[0], tuple(ordered))
            return
        expanded = {
            f"{name}_{n}": item for name, items in lists.items() for n, item in enumerate(items)
        }
        await run_text(connection, self._join(pieces, lists), expanded | scalars)

    def _join(self, pieces: list[str], values: dict[str, list[Any]]) -> str:
        if len(pieces) == 1:
            return pieces[0]
        lengths = tuple(len(values[name]) for name in pieces[1::2])
        text = self._joined.get(lengths)
        if text is None:
            if len(self._joined) >= JOINED_TEXTS:
                self._joined.clear()
            text = self._joined[lengths] = "".join(
                piece
                if n % 2 == 0
                # An empty list as `IN (NULL)` (never true), not `IN ()`: SQLite plans the
                # empty list as a constant and the rest of its join as a scan of each table.
                else ", ".join(f":{piece}_{i}" for i in range(len(values[piece]))) or "NULL"
                for n, piece in enumerate(pieces)
            )
        return text


def of_conversation(
    rows: Any, account_id: ColumnElement[int], conversation_id: ColumnElement[int]
) -> ColumnElement[bool]:
    """`rows` (a table or subquery with `account_id` and `conversation_id`: messages, tag links,
    the aggregates' records) of that conversation, by its whole key (issue 20)."""
    return and_(rows.c.account_id == account_id, rows.c.conversation_id == conversation_id)


async def run_text(connection: AsyncConnection, sql: str, parameters: Any) -> list[Any]:
    """Run `sql` (the dialect's own text and parameters) in the connection's transaction; its
    rows as the driver gives them (no result types applied), or [] for a statement without.

    On the writer's SQLite connection (`models.inline_sqlite`) it goes to sqlite3 at once,
    not through SQLAlchemy's execution and aiosqlite's cursor (about 30 µs of Python per
    statement, against 1 µs for a keyed statement on sqlite3 itself). What SQLAlchemy would do
    around it is kept: the engine's cursor-execute listeners hear the statement (metrics, the
    tests' statement checks), and a driver error is raised as SQLAlchemy's (`IntegrityError`,
    `OperationalError`), as the writer's callers expect."""
    sync = connection.sync_connection
    assert sync is not None  # a started connection (the caller's transaction)
    inline = inline_sqlite.inline_of(sync.connection.driver_connection)
    if inline is None:
        result = await connection.exec_driver_sql(sql, parameters)
        return list(result.all()) if result.returns_rows else []
    dispatch = sync.dispatch
    for listener in dispatch.before_cursor_execute:
        listener(sync, None, sql, parameters, None, False)
    try:
        rows = await inline.run(sql, parameters)
    except sqlite3.Error as error:
        raise DBAPIError.instance(
            sql, parameters, error, sqlite3.Error, dialect=sync.dialect
        ) from error
    for listener in dispatch.after_cursor_execute:
        listener(sync, None, sql, parameters, None, False)
    return rows


class listed(FunctionElement[Any]):
    """The non-null values of `column` in a group, as one aggregate: on SQLite `group_concat`
    (a text of comma-separated values, NULL when none), on PostgreSQL `array_agg` (an array).
    `resolvers.percentiles.values_of_list` reads either back. For exact order statistics over
    many groups at once: one statement hands every value over in a few long values, where a
    window ranking each row (`row_number() OVER`) costs SQLite a sort of the whole range."""

    name = "listed"
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)


@compiles(listed)
def _listed(element: listed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"group_concat({compiler.process(column, **kw)})"


@compiles(listed, "postgresql")
def _listed_array(element: listed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    value = compiler.process(column, **kw)
    return f"array_agg({value}) FILTER (WHERE {value} IS NOT NULL)"
