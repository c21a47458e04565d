"""Shared fixtures: a fresh migrated database per test, on SQLite and (when configured) PostgreSQL,
the ASGI app with its lifespan, an HTTP client through it, and account/token factories."""

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api import accounts
from api.app import create_app
from models.db import create_engine, transaction
from models.migrate import upgrade_to_head
from models.settings import Settings
from tests import tenancy

POSTGRES_URL = os.environ.get("WAREPORTS_TEST_POSTGRES_URL")
ENGINES = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
SECRET_KEY = "test-secret-key-not-for-production"
ALL_SCOPES = ["reports:read", "reports:export", "ingest:write", "admin"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    return path


def _pg_url(database: str) -> str:
    assert POSTGRES_URL is not None
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_admin(sql: str) -> None:
    """One statement on the configured PostgreSQL server (CREATE/DROP DATABASE)."""
    assert POSTGRES_URL is not None
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database used as TEMPLATE for each test's database."""
    if POSTGRES_URL is None:
        yield None
        return
    import asyncio

    name = f"wareports_template_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    upgrade_to_head(_pg_url(name))
    yield name
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=ENGINES)
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_template: str | None,
) -> AsyncIterator[str]:
    """The URL of a fresh database at the head migration, on each configured engine."""
    if request.param == "sqlite":
        path = tmp_path / "wareports.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert POSTGRES_URL is not None and postgres_template is not None
    name = f"wareports_test_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield _pg_url(name)
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "public_url": "http://testserver",
        "rate_limit": "100000/minute",
        "click_rate_limit": "100000/minute",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def engine(app: Starlette) -> AsyncEngine:
    return app.state.engine  # type: ignore[no-any-return]


@pytest.fixture
def engines(app: Starlette) -> tuple[AsyncEngine, AsyncEngine]:
    """The primary and the reports' engine (the same one without a replica): what a request
    may run statements on, besides the writer's."""
    return app.state.engine, app.state.read_engine


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass(frozen=True)
class TestAccount:
    __test__ = False

    id: int
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def create_test_account(
    engine: AsyncEngine,
    name: str = "Acme",
    timezone: str = "UTC",
    scopes: list[str] | None = None,
    auto_close_hours: float = 24,
) -> TestAccount:
    async with transaction(engine) as session:
        account = await accounts.create_account(session, name, timezone, auto_close_hours)
        assert account.id is not None
        row, token = await accounts.create_token(session, account.id, scopes or ALL_SCOPES)
        assert row.id is not None
        return TestAccount(id=account.id, token=token, token_id=row.id)


@pytest.fixture
async def account(engine: AsyncEngine) -> TestAccount:
    """An account in UTC with a token holding every scope."""
    return await create_test_account(engine)


async def graphql(
    client: httpx.AsyncClient,
    who: TestAccount | str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """POST a GraphQL query with a token; returns the decoded body (errors included)."""
    token = who if isinstance(who, str) else who.token
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def create_isolated_engine(url: str) -> AsyncEngine:
    return create_engine(url)


TRANSACTION_CONTROL = ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")


@contextmanager
def counting_statements(
    *engines: AsyncEngine, only: tuple[str, ...] = (), naming_not: str | None = None
) -> Iterator[list[str]]:
    """The SQL statements run on these engines inside the block, transaction control left
    out; `only`: those that start with one of these words; `naming_not`: without those that
    name this (a table the caller does not count)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = statement.lstrip().upper()
        if text.rstrip() in TRANSACTION_CONTROL or (only and not text.startswith(only)):
            return
        if naming_not is None or naming_not not in statement:
            statements.append(statement)

    watched = list({id(engine.sync_engine): engine.sync_engine for engine in engines}.values())
    for sync_engine in watched:
        event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for sync_engine in watched:
            event.remove(sync_engine, "before_cursor_execute", record)


# -- every statement names its account (issue 20) ----------------------------------------------

CAPTURED = tenancy.capture()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the run when a statement the application sent leaves a distributed table without
    an `account_id` condition (`tests/tenancy.py`), unless it comes from a function still
    listed there as known; lists each one (new, then known) in `unscoped-statements.txt`."""
    new, known = tenancy.new_violations(CAPTURED)
    report = Path(session.config.rootpath) / "unscoped-statements.txt"
    report.write_text("".join(f"{line}\n" for line in new + known))
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None and known:
        terminal.write_line(
            f"{len(known)} statements of functions listed in tenancy.KNOWN_UNSCOPED still leave "
            f"a distributed table without account_id (listed in {report})"
        )
    if not new:
        return
    if terminal is not None:
        terminal.write_line(
            f"{len(new)} statements leave a distributed table without account_id "
            f"(tests/tenancy.py); listed in {report}",
            red=True,
        )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
