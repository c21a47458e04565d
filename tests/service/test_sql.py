"""`models.sql.one_of`: membership in a bound list, on both engines; on PostgreSQL the SQL text
does not change with the list's length (one prepared statement, not one per length)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import BigInteger, String, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from models import Account, inline_sqlite
from models.db import session_factory, transaction
from models.sql import Prepared, one_of, run_text, values_of
from tests.conftest import create_test_account

ACCOUNT = Account.__table__  # type: ignore[attr-defined]
BY_ID = select(ACCOUNT.c.name).where(one_of(ACCOUNT.c.id, values_of("ids", BigInteger())))
BY_NAME = select(ACCOUNT.c.id).where(one_of(ACCOUNT.c.name, values_of("names", String())))


async def test_one_of_finds_the_rows_whose_value_is_in_the_list(engine: AsyncEngine) -> None:
    ids = [(await create_test_account(engine, f"Member {n}")).id for n in range(4)]
    with statements_run(engine) as texts:
        async with session_factory(engine)() as session:
            found = {
                length: set((await session.scalars(BY_ID, {"ids": ids[:length]})).all())
                for length in (0, 1, 3)
            }
            by_name = await session.scalars(BY_NAME, {"names": {"Member 2", "Member 9"}})
            assert set(by_name.all()) == {ids[2]}
            duplicates = await session.scalars(BY_ID, {"ids": [ids[1], ids[1]]})
            assert duplicates.all() == ["Member 1"]

    assert found == {0: set(), 1: {"Member 0"}, 3: {"Member 0", "Member 1", "Member 2"}}
    by_id = [text for text in texts if text.startswith("SELECT account.name")][:3]
    if engine.dialect.name == "postgresql":
        assert len(set(by_id)) == 1 and "= ANY(" in by_id[0]
    else:
        assert [text.count("?") for text in by_id] == [0, 1, 3]  # SQLite: an expanded IN


def test_one_of_renders_an_array_on_postgresql_and_an_in_list_elsewhere() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    assert "account.id = ANY(%(ids)s::BIGINT[])" in str(BY_ID.compile(dialect=postgresql.dialect()))
    rendered = str(BY_ID.compile(dialect=sqlite.dialect()))
    assert "account.id IN (__[POSTCOMPILE_ids])" in rendered
    assert "= 1" not in rendered  # a condition, never compared with 1 (no native booleans)


@pytest.mark.parametrize("values", [None, ()])
def test_an_empty_or_missing_list_binds_as_an_empty_array(values: Any) -> None:
    from sqlalchemy.dialects import postgresql

    bound = values_of("ids", BigInteger()).type
    process = bound.bind_processor(postgresql.dialect())
    assert (process(values) if process else values) == []


@contextmanager
def statements_run(engine: AsyncEngine) -> Iterator[list[str]]:
    """The texts of the statements the engine runs meanwhile."""
    texts: list[str] = []

    def capture(*args: Any) -> None:
        texts.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield texts
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def test_a_prepared_statement_binds_its_lists_and_inlines_the_rest(
    engine: AsyncEngine,
) -> None:
    """`Prepared`: every value but the lists inline, each list bound: one array on PostgreSQL
    (one text whatever the list holds), expanded on SQLite (a text per length)."""
    ids = [(await create_test_account(engine, f"Member {n}")).id for n in range(4)]
    renaming = Prepared(
        update(ACCOUNT)
        .where(one_of(ACCOUNT.c.id, values_of("ids", BigInteger())), ACCOUNT.c.name != "it's")
        .values(name=ACCOUNT.c.name + " (renamed)")
    )
    with statements_run(engine) as texts:
        async with session_factory(engine)() as session:
            for some in ([], [ids[0]], ids[2:], [ids[2], ids[2]], [ids[3], ids[1]]):
                await renaming.execute(session, ids=some)
            await session.commit()
            names = dict((await session.execute(select(ACCOUNT.c.id, ACCOUNT.c.name))).all())

    assert [names[i] for i in ids] == [
        "Member 0 (renamed)",
        "Member 1 (renamed)",
        "Member 2 (renamed) (renamed)",
        "Member 3 (renamed) (renamed)",
    ]
    updates = [text for text in texts if text.startswith("UPDATE account")]
    assert len(updates) == 5
    assert "'it''s'" in updates[0]  # the statement's own values are literals, quoted
    if engine.dialect.name == "postgresql":
        assert len(set(updates)) == 1 and "= ANY($1)" in updates[0]
    else:
        assert [text.count(":ids_") for text in updates] == [0, 1, 2, 2, 2]
        assert len(set(updates[2:])) == 1


async def test_sqlite_moves_a_cells_contacts_in_sql(engine: AsyncEngine) -> None:
    """`wareports_moved_contacts(contacts, plus, minus)`, which every SQLite connection has:
    the set with `plus` added and `minus` removed; an empty set is NULL."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reads, locks and writes each cell's set back")
    from pyroaring import BitMap64

    def blobs(*sets: set[int] | None) -> tuple[bytes | None, ...]:
        return tuple(None if s is None else BitMap64(s).serialize() for s in sets)

    async with engine.connect() as connection:
        results = []
        for case in (
            (None, {3, 1}, None),
            ({1, 3}, {2**40}, {3, 7}),
            ({5}, None, {5}),
            (None, None, None),
        ):
            row = await connection.exec_driver_sql(
                "SELECT wareports_moved_contacts(?, ?, ?)", blobs(*case)
            )
            blob = row.scalar()
            results.append(None if blob is None else sorted(BitMap64.deserialize(blob)))
    assert results == [[1, 3], [1, 2**40], None, None]


async def test_a_text_run_by_the_writer_is_heard_returns_its_rows_and_fails_as_sqlalchemy_s(
    app: Starlette, engine: AsyncEngine
) -> None:
    """`run_text`: on the writer's SQLite connection the text goes to sqlite3 directly; the
    engine's listeners still hear it, rows come back as the driver gives them, and a driver
    error is SQLAlchemy's (the writer's callers tell a lost race by it), rolling back."""
    writer = app.state.writer.engine
    ids = [(await create_test_account(engine, f"Direct {n}")).id for n in range(2)]
    sqlite = writer.dialect.name == "sqlite"
    by_id = "SELECT name FROM account WHERE id = " + ("?" if sqlite else "$1")
    rename = "UPDATE account SET name = " + ("? WHERE id = ?" if sqlite else "$1 WHERE id = $2")
    with statements_run(writer) as texts:
        async with transaction(writer) as session:
            connection = await session.connection()
            raw = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            assert (inline_sqlite.inline_of(raw) is not None) == sqlite
            assert await run_text(connection, by_id, (ids[0],)) == [("Direct 0",)]
            assert await run_text(connection, rename, ("Renamed", ids[0])) == []
        with pytest.raises(IntegrityError):  # an account's id taken by another
            async with transaction(writer) as session:
                connection = await session.connection()
                await run_text(connection, rename, ("Lost", ids[1]))
                duplicate = "UPDATE account SET id = " + (
                    "? WHERE id = ?" if sqlite else "$1 WHERE id = $2"
                )
                await run_text(connection, duplicate, (ids[0], ids[1]))
    assert [text for text in texts if text in (by_id, rename)] == [by_id, rename, rename]
    async with session_factory(engine)() as session:
        names = dict((await session.execute(select(ACCOUNT.c.id, ACCOUNT.c.name))).all())
    assert (names[ids[0]], names[ids[1]]) == ("Renamed", "Direct 1")  # the failed one rolled back
