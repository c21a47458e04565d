"""`one_of(column, values)`: membership in a list bound as one parameter, for statements that
run with lists of any length (ingestion's look-ups by wamid, phone, contact or conversation).

On PostgreSQL `column IN (:a, :b, ...)` is new SQL text for every length of the list, which the
server prepares and plans anew (a round trip and a plan per execution; the prepared statement
cache thrashes): there the list is one array parameter, `column = ANY(:values)`, and the text
never changes. SQLite prepares statements cheaply and plans `IN (?, ?, ...)` on an index better
than any list-valued form (`json_each`), so there it stays an expanding `IN`.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, String, and_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


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
    expanded = bindparam(values.key, expanding=True, type_=values.type.item)
    return compiler.process(column.in_(expanded), **kw)


@compiles(one_of, "postgresql")
def _one_of_array(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = list(element.clauses)
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(values, **kw)})"


def of_conversation(
    rows: Any, account_id: ColumnElement[int], conversation_id: ColumnElement[int]
) -> ColumnElement[bool]:
    """`rows` (a table or subquery with `account_id` and `conversation_id`: messages, tag links,
    the aggregates' records) of that conversation, by its whole key (issue 20)."""
    return and_(rows.c.account_id == account_id, rows.c.conversation_id == conversation_id)
