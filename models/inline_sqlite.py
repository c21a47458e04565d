"""SQLite for the ingestion writer: aiosqlite's API, each call made at once on the event loop.

aiosqlite runs every call (cursor, execute, fetch, close) in a thread of its own and wakes the
event loop for each answer: about 70 µs per hand-off, 250 µs and more per statement, while
SQLite itself answers a keyed look-up or a small INSERT in a few µs. The writer runs
statements one after another anyway, so its connection (`InlineConnection`) calls sqlite3
directly: the loop is held only for the time SQLite works, a few milliseconds per group
transaction, and a long transaction (a large event batch) gives the loop a turn every
`TURN_SECONDS`, so requests are still read, validated and queued, and reads answered, meanwhile.

The one wait that could be long, the write lock held by another process (another worker, the
CLI), is not left to SQLite's busy handler, which would sleep on the loop's thread: the
connection has no busy timeout, and a call that finds the database locked is tried again after
an asyncio sleep, until `busy_timeout` has passed.
"""

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiosqlite

RETRY_FIRST_SECONDS = 0.001
RETRY_MAX_SECONDS = 0.05
TURN_SECONDS = 0.02  # the loop is held at most about this long before other tasks get a turn


class _Inline:
    """Stands for aiosqlite's queue to its thread: what is put is run at once (SQLAlchemy's
    adapter puts work there directly, to set `isolation_level`)."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:
            if future is not None:
                future.set_exception(error)
        else:
            if future is not None:
                future.set_result(result)


# Prepared statements each connection keeps (sqlite3's default is 128): the writer alone runs
# more distinct texts than that (each length of an expanded `IN` list is a text of its own), and
# preparing a 24 kB aggregate delta again costs more than running it.
STATEMENTS = 1024


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _Inline()  # type: ignore[assignment]
        self.busy_timeout = busy_timeout
        self._turn_began = time.monotonic()

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def _connect(self) -> "InlineConnection":
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        deadline, pause = None, RETRY_FIRST_SECONDS
        while True:
            try:
                result = fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise
                moment = time.monotonic()
                deadline = deadline or moment + self.busy_timeout
                if moment >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_SECONDS)
                continue
            await self._give_a_turn()
            return result

    async def run(self, sql: str, parameters: Any) -> list[Any]:
        """`sql` on the sqlite3 connection itself, and its rows: no cursor wrapper, no greenlet
        hand-off, no result processing (`models.sql.run_text`). Measured on this connection:
        about 30 µs of Python per statement through SQLAlchemy's `exec_driver_sql`, 1 µs here.
        Only inside a write transaction: BEGIN IMMEDIATE holds the lock, nothing to wait for."""
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        rows = self._connection.execute(sql, parameters).fetchall()
        await self._give_a_turn()
        return rows

    async def _give_a_turn(self) -> None:
        """A long transaction lets the loop answer meanwhile, every `TURN_SECONDS`."""
        if time.monotonic() - self._turn_began > TURN_SECONDS:
            await asyncio.sleep(0)
            self._turn_began = time.monotonic()

    def stop(self) -> None:  # type: ignore[override]
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def inline_of(driver_connection: Any) -> InlineConnection | None:
    """The writer's inline connection behind a pooled connection's driver connection (None for
    any other: aiosqlite's threaded one, asyncpg)."""
    return driver_connection if isinstance(driver_connection, InlineConnection) else None


def _locked(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def connector(path: str, busy_timeout: float) -> Callable[[], Awaitable[InlineConnection]]:
    """What `create_async_engine(async_creator=...)` calls for each new connection."""

    async def connect() -> InlineConnection:
        opened = partial(
            sqlite3.connect, path, timeout=0, isolation_level=None, cached_statements=1024
        )
        return await InlineConnection(opened, busy_timeout)

    return connect
