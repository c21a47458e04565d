"""The writer's SQLite connection calls SQLite on the event loop (`models.inline_sqlite`): while
another process holds the database's write lock, it waits with asyncio sleeps, so the server
keeps answering, and stores the delivery once the lock is released."""

import asyncio
import sqlite3
import time

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest.writer import GroupWriter
from models.inline_sqlite import InlineConnection
from models.settings import Settings
from tests.conftest import TestAccount
from tests.ingest.support import add_channel, count_rows, inbound, post_webhook

T = 1_796_000_000


@pytest.fixture
def sqlite_path(settings: Settings) -> str:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the inline connection is SQLite's")
    path = make_url(settings.database_url).database
    assert path
    return path


async def test_the_writer_uses_an_inline_connection(
    app: object, sqlite_path: str, engine: AsyncEngine, account: TestAccount
) -> None:
    writer: GroupWriter = app.state.writer  # type: ignore[attr-defined]
    assert writer.engine is not engine
    async with writer.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, InlineConnection)


async def test_a_lock_held_by_another_process_is_waited_for_without_holding_the_loop(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, sqlite_path: str
) -> None:
    await add_channel(engine, account.id)
    other = sqlite3.connect(sqlite_path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    try:
        delivery = asyncio.create_task(post_webhook(client, inbound("w-1", "33612345678", T)))
        await asyncio.sleep(0.3)
        assert not delivery.done()  # waiting for the lock...
        started = time.perf_counter()
        health = await client.get("/healthz")  # ...while the server answers
        assert health.status_code == 200
        assert time.perf_counter() - started < 5  # not blocked until the lock is released
        assert (await count_rows(engine))["message"] == 0
    finally:
        other.execute("COMMIT")
        other.close()
    response = await asyncio.wait_for(delivery, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["messages"] == 1
    assert (await count_rows(engine))["message"] == 1
