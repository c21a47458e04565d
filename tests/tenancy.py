"""Every statement the application runs names its account (issue 20): what a Citus router needs
to send a statement to the one node holding the account, and what keeps one account's
statement off another's rows.

While the suite runs, `capture` records each distinct SQL statement that code of the
application (api, ingest, resolvers, schema, models; not the tests' own set-up and checks, not
the migrations) sends to any engine. At the end of the session `unscoped` parses each with
sqlglot and names every reference to a distributed table (`models.distribution`) that no
`account_id` condition pins: `t.account_id = <parameter or literal>` (or `IN`, `= ANY`), an
inserted `account_id` column, or `t.account_id = u.account_id` with `u` pinned.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet
import sqlglot
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlglot import exp
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables on the metadata)
from models.distribution import DISTRIBUTION_COLUMN, placements

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = tuple(
    str(ROOT / part) + "/" for part in ("api", "ingest", "resolvers", "schema", "models")
)
NOT_APPLICATION = (str(ROOT / "models" / "migrations") + "/", str(ROOT / "models" / "migrate.py"))
# Pass-throughs: the statement belongs to their caller.
PASSING = (str(ROOT / "models" / "db.py"),)
TESTS = str(ROOT / "tests") + "/"
DISTRIBUTED = frozenset(p.table for p in placements(SQLModel.metadata) if p.kind == "distributed")
DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}


@dataclass
class Captured:
    """Distinct statements of the application, by (dialect, SQL): where one was first sent."""

    statements: dict[tuple[str, str], str] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def record(self, connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        key = (connection.dialect.name, statement)
        if key in self.seen:
            return
        self.seen.add(key)
        where = _origin()
        if where is not None:
            self.statements[key] = where


def capture() -> Captured:
    """Start recording the statements of every engine (sync engines: the async ones wrap them)."""
    captured = Captured()
    event.listen(Engine, "before_cursor_execute", captured.record)
    return captured


def _frames() -> list[FrameType]:
    """This thread's frames, innermost first, then those of the greenlet that handed the
    statement to SQLAlchemy's (where the application's coroutines are)."""
    found: list[FrameType] = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        found.append(frame)
        frame = frame.f_back
    parent = greenlet.getcurrent().parent
    frame = parent.gr_frame if parent is not None else None
    while frame is not None:
        found.append(frame)
        frame = frame.f_back
    return found


def _origin() -> str | None:
    """`path:function` of the innermost frame of the application that sent the statement; None
    when the innermost frame of the project is a test's, or a migration's."""
    for frame in _frames():
        path = frame.f_code.co_filename
        if path == __file__ or path in PASSING:
            continue  # the listener itself, or a session's wrapper
        if path.startswith(TESTS) or path.startswith(NOT_APPLICATION):
            return None
        if path.startswith(APPLICATION):
            return f"{Path(path).relative_to(ROOT)}:{frame.f_code.co_name}"
    return None


def _pinned_value(node: exp.Expression) -> bool:
    """A parameter or a literal (possibly cast), or `ANY` of one: a value the statement fixes."""
    while isinstance(node, (exp.Cast, exp.Paren, exp.Any)):
        node = node.this
    return isinstance(node, (exp.Placeholder, exp.Parameter, exp.Literal))


def _account_column(node: exp.Expression) -> exp.Column | None:
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Column) and node.name == DISTRIBUTION_COLUMN:
        return node
    if isinstance(node, exp.Column) and (node.table, node.name) == ("account", "id"):
        return node  # the account's own key, pinned like `account_id`
    return None


def _scope_tables(node: exp.Expression) -> list[str]:
    """The names (aliases) of the tables of the statement or SELECT enclosing `node`, directly
    (not in nested queries): those an unqualified column may belong to."""
    scope = node.find_ancestor(exp.Select, exp.Update, exp.Delete)
    if scope is None:
        return []
    names = []
    for table in scope.find_all(exp.Table):
        if table.find_ancestor(exp.Select, exp.Update, exp.Delete) is scope:
            names.append(table.alias_or_name)
    return names


def unscoped(sql: str, dialect: str) -> list[str]:
    """The distributed tables `sql` reads or writes without pinning their `account_id`."""
    tree = sqlglot.parse_one(sql, read=DIALECTS.get(dialect, dialect))
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    references: list[tuple[str, str]] = []  # (alias, table)
    pinned: set[str] = set()
    inserted: set[int] = set()  # the target tables of the INSERTs (not read, written)
    for insert in tree.find_all(exp.Insert):
        target = insert.this
        table = target.this if isinstance(target, exp.Schema) else target
        inserted.add(id(table))
        if isinstance(table, exp.Table) and table.name in DISTRIBUTED:
            columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
            references.append((f"insert:{table.name}", table.name))
            if DISTRIBUTION_COLUMN in columns:
                pinned.add(f"insert:{table.name}")
    for table in tree.find_all(exp.Table):
        if id(table) in inserted or table.name in ctes or table.name not in DISTRIBUTED:
            continue
        references.append((table.alias_or_name, table.name))
    links: list[tuple[str, str]] = []
    for condition in tree.find_all(exp.EQ, exp.In):
        left = _account_column(condition.this)
        if left is None:
            continue
        owners = [left.table] if left.table else _scope_tables(condition)
        if isinstance(condition, exp.In):
            values = condition.expressions
            if values and all(_pinned_value(value) for value in values):
                pinned.update(owners)
            continue
        right_node = condition.expression
        right = _account_column(right_node)
        if right is not None:
            others = [right.table] if right.table else _scope_tables(condition)
            links += [(a, b) for a in owners for b in others]
        elif _pinned_value(right_node):
            pinned.update(owners)
    changed = True
    while changed:  # pinned through `a.account_id = b.account_id`
        changed = False
        for a, b in links:
            if (a in pinned) != (b in pinned):
                pinned.update((a, b))
                changed = True
    return sorted({f"{table} (as {alias})" for alias, table in references if alias not in pinned})


def violations(captured: Captured) -> list[tuple[str, str]]:
    """(origin, description) of each captured statement that leaves a distributed table
    unpinned."""
    found = []
    for (dialect, sql), where in sorted(captured.statements.items(), key=lambda item: item[1]):
        if not any(name in sql for name in DISTRIBUTED) or sql.lstrip().upper().startswith(
            "ANALYZE"
        ):
            continue  # (statistics are gathered per table, not per account)
        try:
            missing = unscoped(sql, dialect)
        except sqlglot.errors.ParseError as error:
            found.append((where, f"[{dialect}] unparsed ({error}): {sql[:300]}"))
            continue
        if missing:
            text = " ".join(sql.split())[:400]
            found.append((where, f"[{dialect}] {', '.join(missing)}: {text}"))
    return found


# The functions whose statements may leave a distributed table unpinned, and why. A new
# function here fails the run; remove a line when its statements are fixed.
KNOWN_UNSCOPED = frozenset(
    {
        # SQLite only (PostgreSQL takes ids from the sequence): the demo generator reserves
        # the next row ids of the file, which are shared by every account.
        "ingest/demo.py:reserve_ids",
    }
)


def new_violations(captured: Captured) -> tuple[list[str], list[str]]:
    """The violations of functions not in KNOWN_UNSCOPED, and those of known ones (one line
    each)."""
    found = [(where, f"{where} {text}") for where, text in violations(captured)]
    new = [line for where, line in found if where not in KNOWN_UNSCOPED]
    return new, [line for where, line in found if where in KNOWN_UNSCOPED]
