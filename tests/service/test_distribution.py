"""The schema against what a distributed PostgreSQL (Citus) needs, from the SQLAlchemy metadata:
the tenant-key rules (`models.distribution.violations`), and `wareports citus-plan` checked
against the metadata and, on PostgreSQL, against the constraints the migrated database has."""

import re

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from typer.testing import CliRunner

from api.cli import app
from models.distribution import COLOCATION_ANCHOR, REFERENCE_TABLES, citus_plan, violations
from tests.tenancy import unscoped

METADATA = SQLModel.metadata
REMAINING: list[str] = []
CREATE = re.compile(r"SELECT create_(reference|distributed)_table\('(\w+)'(.*)\);")
FOREIGN_KEY = re.compile(r"ALTER TABLE (\w+) (DROP|ADD) CONSTRAINT (\w+)")


def test_the_tenant_key_rules_are_broken_only_where_known() -> None:
    assert violations(METADATA) == REMAINING


def test_the_rules_catch_each_kind_of_break() -> None:
    """A distributed table keyed by its id, unique on a column alone, pointing to another by
    id, and indexed by another column first: four breaks; a reference table is exempt."""
    metadata = MetaData()
    Table("contact", metadata, Column("account_id", Integer, primary_key=True))
    Table(
        "note",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("account_id", Integer),
        Column("code", Integer),
        Column("contact_id", Integer, ForeignKey("contact.account_id")),
        UniqueConstraint("code"),
        Index("ix_note_code", "code", "account_id"),
    )
    Table(
        "channel", metadata, Column("id", Integer, primary_key=True), Column("account_id", Integer)
    )
    assert violations(metadata) == [
        "note: primary key (id) lacks account_id",
        "note: unique (code) lacks account_id",
        "note: foreign key (contact_id) to contact lacks account_id",
        "note: index ix_note_code (code, account_id) not led by account_id",
    ]


def test_the_plan_places_every_table_of_the_metadata() -> None:
    plan = citus_plan(METADATA)
    created = [(kind, table, rest) for kind, table, rest in CREATE.findall(plan)]
    tables = {table.name for table in METADATA.sorted_tables}
    reference = {table for kind, table, _ in created if kind == "reference"}
    distributed = [table for kind, table, _ in created if kind == "distributed"]
    assert reference == set(REFERENCE_TABLES)
    expected = {t.name for t in METADATA.sorted_tables if "account_id" in t.c} - reference
    assert set(distributed) == expected and len(distributed) == len(expected)
    assert reference | set(distributed) == tables  # every table, once
    # The anchor first, every other colocated with it, all by account_id.
    assert distributed[0] == COLOCATION_ANCHOR
    for kind, table, rest in created:
        if kind == "distributed":
            colocation = "'default'" if table == COLOCATION_ANCHOR else f"'{COLOCATION_ANCHOR}'"
            assert rest == f", 'account_id', colocate_with => {colocation}"
    # A parent is distributed before the tables that point to it.
    order = {table: number for number, table in enumerate(distributed)}
    for table in METADATA.sorted_tables:
        for key in table.foreign_key_constraints:
            parent = key.referred_table.name
            if table.name in order and parent in order and parent != COLOCATION_ANCHOR:
                assert order[parent] < order[table.name], (parent, table.name)
    # In one transaction, in sequential mode, the keys between distributed tables dropped
    # before and added after, each once.
    lines = plan.splitlines()
    assert lines[2:4] == ["BEGIN;", "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';"]
    assert lines[-1] == "COMMIT;"
    keys = FOREIGN_KEY.findall(plan)
    dropped = [(table, name) for table, verb, name in keys if verb == "DROP"]
    added = [(table, name) for table, verb, name in keys if verb == "ADD"]
    assert dropped == added and len(set(dropped)) == len(dropped) > 0
    first_create = next(n for n, line in enumerate(lines) if line.startswith("SELECT create_"))
    last_create = max(n for n, line in enumerate(lines) if line.startswith("SELECT create_"))
    for number, line in enumerate(lines):
        if " DROP CONSTRAINT " in line:
            assert number < first_create
        if " ADD CONSTRAINT " in line:
            assert number > last_create


async def test_the_plan_names_the_foreign_keys_the_database_has(
    database_url: str, engine: AsyncEngine
) -> None:
    """The constraints the plan drops and adds again are those a migrated database holds,
    by name: every foreign key between two distributed tables, and no other."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite names no constraint, and is never distributed")
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT conrelid::regclass::text, conname, confrelid::regclass::text"
                " FROM pg_constraint WHERE contype = 'f'"
            )
        )
        found = {(table, name) for table, name, parent in rows if parent not in REFERENCE_TABLES}
    planned = {
        (table, name)
        for table, verb, name in FOREIGN_KEY.findall(citus_plan(METADATA))
        if verb == "DROP"
    }
    assert planned == found


def test_citus_plan_prints_the_plan_and_names_what_breaks_a_rule() -> None:
    result = CliRunner().invoke(app, ["citus-plan"])
    assert result.stdout == citus_plan(METADATA)
    assert result.exit_code == (1 if REMAINING else 0)
    assert result.stderr.splitlines() == [f"tenant-key rule broken: {line}" for line in REMAINING]


@pytest.mark.parametrize(
    ("sql", "dialect", "unpinned"),
    [
        # Pinned by a parameter, through a join on account_id, by IN and = ANY, by an insert.
        ("SELECT m.id FROM message AS m WHERE m.account_id = ? AND m.wamid = ?", "sqlite", []),
        (
            "SELECT m.id FROM message AS m JOIN conversation AS c ON c.id = m.conversation_id"
            " AND c.account_id = m.account_id WHERE m.account_id = $1::INTEGER",
            "postgresql",
            [],
        ),
        ("DELETE FROM pending_status WHERE account_id IN (?, ?)", "sqlite", []),
        ("SELECT id FROM contact WHERE account_id = ANY($1::INTEGER[])", "postgresql", []),
        ("INSERT INTO message (account_id, wamid) VALUES (?, ?)", "sqlite", []),
        (
            "SELECT a.timezone FROM account JOIN aggregate_state AS a"
            " ON a.account_id = account.id WHERE account.id = ?",
            "sqlite",
            [],
        ),
        # Not pinned: by id alone, a join on the conversation id alone, a correlated
        # subquery, an insert without the column, a comparison with another column.
        ("UPDATE message SET status = $1 WHERE message.id = $2", "postgresql", ["message"]),
        (
            "SELECT m.id FROM message AS m JOIN conversation AS c ON c.id = m.conversation_id"
            " WHERE m.account_id = ?",
            "sqlite",
            ["conversation"],
        ),
        (
            "SELECT c.id FROM conversation AS c WHERE c.account_id = ? AND EXISTS"
            " (SELECT 1 FROM message AS m WHERE m.conversation_id = c.id)",
            "sqlite",
            ["message"],
        ),
        ("INSERT INTO message (wamid) VALUES (?)", "sqlite", ["message"]),
        ("SELECT id FROM tag WHERE account_id = name_key", "sqlite", ["tag"]),
        # Tables of no account, or reference tables, need nothing.
        ("SELECT id FROM channel WHERE phone_number_id = ?", "sqlite", []),
    ],
)
def test_the_statement_rule(sql: str, dialect: str, unpinned: list[str]) -> None:
    """`tests/tenancy.py`, which the whole suite's statements go through at the end of the run."""
    assert [name.split()[0] for name in unscoped(sql, dialect)] == unpinned
