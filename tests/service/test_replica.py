"""A read replica for the reports (`WAREPORTS_READ_DATABASE_URL`): reports, entity queries and
exports read there and only there, authentication and ingestion use the primary, the replica's
sessions cannot write, and /readyz checks both databases. (The whole report suite also runs
through such a second engine: `tests/reports/conftest.py`.)"""

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from models.db import create_read_engine
from models.migrate import head_revision
from models.settings import Settings
from tests.conftest import TestAccount, counting_statements, graphql, make_settings
from tests.ingest.support import add_channel, inbound, post_webhook
from tests.service.test_ops import serving

REPORT = """{ summaryReport(filter: {from: "2026-05-28", to: "2026-05-28", timezone: "UTC"})
  { totals { conversations messages } } agents { email } }"""
EXPORT = """mutation { exportReportCsv(report: SUMMARY,
  filter: {from: "2026-05-28", to: "2026-05-28", timezone: "UTC"}) { url } }"""
T = 1_780_000_000  # 2026-05-28 20:26:40 UTC


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, read_database_url=database_url)


def tables_read(seen: list[str]) -> Callable[[str], bool]:
    return lambda table: any(table in statement for statement in seen)


async def test_reports_and_exports_read_the_replica_and_authentication_the_primary(
    app: Starlette, engine: AsyncEngine, client: httpx.AsyncClient, account: TestAccount
) -> None:
    replica: AsyncEngine = app.state.read_engine
    assert replica is not engine
    await add_channel(engine, account.id)
    with (
        counting_statements(app.state.writer.engine) as written,
        counting_statements(replica) as reads,
    ):
        assert (await post_webhook(client, inbound("w-1", "33612345678", T))).status_code == 200
    assert any("INSERT INTO message" in statement for statement in written)
    assert reads == []  # ingestion never touches the replica
    with counting_statements(engine) as primary, counting_statements(replica) as reads:
        body = await graphql(client, account, REPORT)
    assert body == {
        "data": {"summaryReport": {"totals": {"conversations": 1, "messages": 1}}, "agents": []}
    }
    assert primary and all("api_token" in statement for statement in primary), (
        primary
    )  # the token only
    assert tables_read(reads)("daily_figures") and tables_read(reads)("agent")
    with counting_statements(engine) as primary, counting_statements(replica) as reads:
        made = await graphql(client, account, EXPORT)
        response = await client.get(made["data"]["exportReportCsv"]["url"])
    assert response.status_code == 200 and "total" in response.text
    assert primary and all("api_token" in statement for statement in primary), primary
    assert tables_read(reads)("account") and tables_read(reads)("daily_figures")


async def test_the_replica_engine_cannot_write(database_url: str, account: TestAccount) -> None:
    """As on a hot standby: a write that strays onto the reports' engine fails at once."""
    replica = create_read_engine(database_url)
    try:
        async with replica.connect() as connection:
            names = await connection.scalar(text("SELECT COUNT(*) FROM account"))
            assert names == 1
        with pytest.raises(DBAPIError, match=r"(?i)read.only|readonly"):
            async with replica.begin() as connection:
                await connection.execute(text("UPDATE account SET name = 'stolen'"))
    finally:
        await replica.dispose()


async def test_readyz_checks_the_replica(database_url: str, tmp_path: Path) -> None:
    """Unreachable, or behind on migrations (a replica that has not replayed them yet): 503
    naming the replica; the primary alone being fine is not enough."""
    down = "sqlite+aiosqlite:////nonexistent-directory/replica.db"
    async with serving(make_settings(database_url, read_database_url=down)) as (_app, http):
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("read replica unreachable (")
    await asyncio.sleep(0.1)  # aiosqlite's thread answers a failed connect late: let it finish
    empty = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    async with serving(make_settings(database_url, read_database_url=empty)) as (_app, http):
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("read replica at migration none, code at ")
    async with serving(make_settings(database_url, read_database_url=database_url)) as (_, http):
        response = await http.get("/readyz")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "migration": head_revision()},
    )
