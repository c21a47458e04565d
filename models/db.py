"""The async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from pyroaring import BitMap64
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from models import inline_sqlite

SQLITE_BUSY_TIMEOUT_MS = 30_000


def now() -> int:
    """The current instant as the tables store it: UTC epoch seconds."""
    return int(time.time())


FUTURE_LEEWAY_SECONDS = 86_400  # a sender's clock may run ahead, by up to a day


def plausible_instant(instant: int) -> bool:
    """Whether an instant a sender gives (an event's `at`, a webhook's `timestamp`) may be
    stored: from 1970-01-01 to a day from now. Anything else is a bug or a probe; kept, it would
    skew every report and overflow dates (year 36812)."""
    return 0 <= instant <= now() + FUTURE_LEEWAY_SECONDS


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine with the pragmas SQLite needs to be safe under concurrent writers.

    On PostgreSQL its statements are planned at each execution with their values
    (`plan_cache_mode=force_custom_plan`, unless the caller sets it: the writer keeps generic
    plans): a report's statements run with new ranges, lists and zones each time, and after
    five executions PostgreSQL may keep a generic plan that cannot see them. A drilled
    summary's messages of the conversations started before its range took 2.0 s with the
    generic plan, against 0.13 s planned with its values (1,000,000 conversations)."""
    if is_sqlite(url):
        timeout = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        return _sqlite_engine(url, SQLITE_BUSY_TIMEOUT_MS, connect_args=timeout, **kwargs)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("server_settings", {}).setdefault(
        "plan_cache_mode", "force_custom_plan"
    )
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def create_read_engine(url: str) -> AsyncEngine:
    """The engine of the reports (`WAREPORTS_READ_DATABASE_URL`): a replica, or the primary
    itself. Its sessions cannot write, as on a hot standby: SQLite connections are
    `query_only`, PostgreSQL transactions `read only` by default, so a write that strays onto
    it fails at once rather than on the day a real replica serves it."""
    if is_sqlite(url):
        engine = create_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_query_only)
        return engine
    settings = {"server_settings": {"default_transaction_read_only": "on"}}
    return create_engine(url, connect_args=settings)


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def create_writer_engine(url: str) -> AsyncEngine:
    """The engine of the process's ingestion writer (`ingest.writer`). On SQLite: one
    connection that calls SQLite on the event loop's thread (`models.inline_sqlite`), waiting
    for another process's write lock with asyncio sleeps. On PostgreSQL: a pool of its own
    (two transactions at once, see `GroupWriter._fold_aside`, and a statistics refresh), so
    that requests never wait for the writer's connections nor the writer for theirs.

    Every transaction of this engine writes (`transaction` needs no engine with options of its
    own for each). On PostgreSQL it does not ping a connection before each transaction (one
    round trip of the few a transaction takes): a connection lost meanwhile fails the
    transaction, which `ingest.transactions.write` runs again once on a new one."""
    if not is_sqlite(url):
        # The writer runs a few large statements again and again with new values: planned
        # once (generic plans), not at each execution (PostgreSQL re-plans a prepared
        # statement for its first five executions, and then whenever a custom plan looks
        # cheaper than the generic one).
        settings = {"server_settings": {"plan_cache_mode": "force_generic_plan"}}
        engine = create_engine(
            url, pool_size=3, max_overflow=1, pool_pre_ping=False, connect_args=settings
        )
    else:
        path = make_url(url).database or ":memory:"
        connect = inline_sqlite.connector(path, SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = _sqlite_engine(url, 0, async_creator=connect, pool_size=1, max_overflow=0)
    return engine.execution_options(write=True)


def _sqlite_engine(url: str, busy_timeout_ms: int, **kwargs: Any) -> AsyncEngine:
    """SQLite with our pragmas (SQLite's own busy handler waiting `busy_timeout_ms`) and BEGIN
    IMMEDIATE for writing sessions."""
    engine = create_async_engine(url, **kwargs)
    pragmas = partial(_sqlite_pragmas, busy_timeout_ms=busy_timeout_ms)
    event.listen(engine.sync_engine, "connect", pragmas)
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def moved_contacts(stored: bytes | None, plus: bytes | None, minus: bytes | None) -> bytes | None:
    """SQLite's `wareports_moved_contacts(contacts, plus, minus)`: an aggregate cell's set of
    contacts (a serialized `pyroaring.BitMap64`; NULL: empty) with the contacts of `plus` added
    and those of `minus` removed (`ingest.contact_sets`: one UPDATE, no read first)."""
    contacts = BitMap64.deserialize(stored) if stored else BitMap64()
    if plus:
        contacts |= BitMap64.deserialize(plus)
    if minus:
        contacts -= BitMap64.deserialize(minus)
    return contacts.serialize() if contacts else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_ms: int) -> None:
    # Let SQLAlchemy, not the driver, manage transactions (needed for BEGIN IMMEDIATE).
    dbapi_connection.isolation_level = None
    dbapi_connection.create_function(
        "wareports_moved_contacts", 3, moved_contacts, deterministic=True
    )
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get("write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SerialSession(AsyncSession):
    """A session that several coroutines of one request may share: GraphQL resolves sibling
    fields concurrently, and an AsyncSession allows one statement at a time, so statements
    queue on a lock instead of failing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._statement_lock = asyncio.Lock()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        async with self._statement_lock:
            return await super().execute(*args, **kwargs)

    async def exec(self, *args: Any, **kwargs: Any) -> Any:
        async with self._statement_lock:
            return await super().exec(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        async with self._statement_lock:
            return await super().scalar(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        async with self._statement_lock:
            return await super().get(*args, **kwargs)


def session_factory(
    engine: AsyncEngine, *, shared: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; `shared=True` gives sessions safe for concurrent resolvers."""
    return async_sessionmaker(
        engine, class_=SerialSession if shared else AsyncSession, expire_on_commit=False
    )


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A writing session, committed on success and rolled back on any error.

    On SQLite it takes the write lock at BEGIN (BEGIN IMMEDIATE), so that concurrent writers
    queue on the busy timeout instead of failing on a lock upgrade mid-transaction; readers are
    never blocked (WAL).
    """
    writing = engine.get_execution_options().get("write", False)
    writer = engine if writing else engine.execution_options(write=True)
    async with session_factory(writer)() as session, session.begin():
        yield session
