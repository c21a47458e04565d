"""Operations: /healthz, /readyz (database down or behind on migrations), /metrics and its access
modes, request ids, the JSON access log without secrets, and two workers auto-closing at once."""

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from logging.config import dictConfig
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

import resolvers.entities
from api.app import create_app
from api.observability import (
    QUIET_LOGGERS,
    bind_metrics,
    count_autoclose_run,
    count_ingested,
    logging_config,
)
from models.migrate import alembic_config, head_revision
from models.settings import Settings
from tests.conftest import TestAccount, create_test_account, make_settings

METRICS_TOKEN = "metrics-scraper-secret-0123456789"
WEBHOOK_FOR_4242 = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "1",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "33100000000",
                            "phone_number_id": "4242",
                        },
                    },
                }
            ],
        }
    ],
}
WAREPORTS = str(Path(sys.executable).with_name("wareports"))


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app of its own (lifespan entered) and a client through it."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


def samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The exposition as {(sample name, labels): value}."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def sample(found: dict[Any, float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


# -- health ---------------------------------------------------------------------------------


async def test_readyz_when_migrated(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "migration": head_revision()}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/wareports",  # nothing listens on port 1
        "sqlite+aiosqlite:////nonexistent-directory/wareports.db",
    ],
    ids=["postgres-closed-port", "sqlite-unreadable-path"],
)
async def test_readyz_when_the_database_is_down(url: str) -> None:
    async with serving(make_settings(url)) as (_app, http):
        alive = await http.get("/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        response = await http.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["reason"].startswith("database unreachable (")
        assert "postgres@" not in body["reason"]
    await asyncio.sleep(0.1)  # aiosqlite's thread answers a failed connect late: let it finish


async def test_readyz_on_a_fresh_empty_file(tmp_path: Path) -> None:
    async with serving(make_settings(f"sqlite+aiosqlite:///{tmp_path}/empty.db")) as (_app, http):
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": f"database at migration none, code at {head_revision()}: run `wareports migrate`",
    }


async def test_readyz_behind_on_migrations_then_ready_again(
    database_url: str, client: httpx.AsyncClient
) -> None:
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "-1")
    response = await client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["reason"]
    assert reason.startswith("database at migration ")
    assert reason.endswith(f", code at {head_revision()}: run `wareports migrate`")
    await asyncio.to_thread(command.upgrade, config, "head")
    assert (await client.get("/readyz")).status_code == 200


# -- metrics --------------------------------------------------------------------------------


async def test_metrics_are_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404


async def test_metrics_behind_a_token(database_url: str) -> None:
    settings = make_settings(database_url, metrics=f"token:{METRICS_TOKEN}")
    async with serving(settings) as (_app, http):
        assert (await http.get("/metrics")).status_code == 401
        wrong = {"Authorization": f"Bearer {METRICS_TOKEN}x"}
        assert (await http.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        response = await http.get("/metrics", headers=right)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")


@pytest.mark.parametrize("value", ["on", "token:", "token:short", "bearer:0123456789abcdef"])
def test_metrics_setting_is_checked(value: str) -> None:
    with pytest.raises(ValidationError, match="off, open, or token:<secret"):
        Settings(metrics=value)


async def test_metrics_count_requests_operations_and_the_helpers(database_url: str) -> None:
    async with serving(make_settings(database_url, metrics="open")) as (app, http):
        account = await create_test_account(app.state.engine)
        headers = account.headers
        await http.get("/healthz")
        await http.get("/healthz")
        await http.get("/no/such/page")
        await http.post("/graphql", json={"query": "{ agents { email } }"})  # 401
        query = "query Agents { agents { email } }"
        await http.post("/graphql", json={"query": query}, headers=headers)
        await http.post(
            "/graphql", json={"query": query, "operationName": "Agents"}, headers=headers
        )
        await http.post("/graphql", json={"query": "query Broken { nope }"}, headers=headers)
        # what ingestion and the reports call (the middleware binds the app for requests)
        bind_metrics(app.state.metrics)
        count_ingested("event", "stored", 3)
        count_ingested("webhook", "unauthorized")
        count_autoclose_run("ok", closed=4)
        count_autoclose_run("failed")
        report = """query($f: ReportFilter!) { summaryReport(filter: $f) { totals { messages } }
          agentReport(filter: $f) { rows { sentMessages } } }"""
        variables = {"f": {"from": "2026-03-01", "to": "2026-03-31"}}
        answer = await http.post(
            "/graphql", json={"query": report, "variables": variables}, headers=headers
        )
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
        found = samples((await http.get("/metrics")).text)

    total = "wareports_http_requests_total"
    assert sample(found, total, method="GET", route="/healthz", status="200") == 2
    assert sample(found, total, method="GET", route="unmatched", status="404") == 1
    assert sample(found, total, method="POST", route="/graphql", status="401") == 1
    assert sample(found, total, method="POST", route="/graphql", status="200") == 4
    latency = "wareports_http_request_duration_seconds_count"
    assert sample(found, latency, method="POST", route="/graphql") == 5
    operations = "wareports_graphql_operations_total"
    assert sample(found, operations, operation="Agents", outcome="ok") == 2
    assert sample(found, operations, operation="Broken", outcome="graphql_validation_failed") == 1
    assert sample(found, "wareports_ingested_total", kind="event", outcome="stored") == 3
    assert sample(found, "wareports_ingested_total", kind="webhook", outcome="unauthorized") == 1
    assert sample(found, "wareports_autoclose_runs_total", outcome="ok") == 1
    assert sample(found, "wareports_autoclose_runs_total", outcome="failed") == 1
    assert sample(found, "wareports_autoclosed_conversations_total") == 4
    # Each statement of each report, filed under it (the token look-ups and the agents list
    # above are not reports).
    sql = "wareports_report_sql_duration_seconds"
    assert (sample(found, f"{sql}_count", report="summary") or 0) >= 1
    assert (sample(found, f"{sql}_count", report="agents") or 0) >= 1
    reports = {dict(labels)["report"] for name, labels in found if name == f"{sql}_count"}
    assert reports == {"summary", "agents"}
    summary_seconds = sample(found, f"{sql}_sum", report="summary")
    assert summary_seconds is not None and 0 < summary_seconds < 5
    assert sample(found, "wareports_db_pool_connections", state="checked_out") == 0
    assert sample(found, "wareports_db_pool_connections", state="idle") is not None


async def test_each_app_counts_alone(database_url: str) -> None:
    settings = make_settings(database_url, metrics="open")
    async with serving(settings) as (_first, one), serving(settings) as (_second, two):
        await one.get("/healthz")
        await one.get("/healthz")
        await two.get("/healthz")
        first = samples((await one.get("/metrics")).text)
        second = samples((await two.get("/metrics")).text)
    name = "wareports_http_requests_total"
    assert sample(first, name, method="GET", route="/healthz", status="200") == 2
    assert sample(second, name, method="GET", route="/healthz", status="200") == 1


async def test_operation_names_are_bounded_labels(database_url: str) -> None:
    async with serving(make_settings(database_url, metrics="open")) as (app, http):
        app.state.metrics.max_operations = 3  # 200 in production
        account = await create_test_account(app.state.engine)
        for number in range(5):
            query = f"query Op{number} {{ agents {{ email }} }}"
            await http.post("/graphql", json={"query": query}, headers=account.headers)
        found = samples((await http.get("/metrics")).text)
    operations = "wareports_graphql_operations_total"
    assert sample(found, operations, operation="Op2", outcome="ok") == 1
    assert sample(found, operations, operation="Op3", outcome="ok") is None
    assert sample(found, operations, operation="other", outcome="ok") == 2


# -- request ids and the access log -------------------------------------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access-log records as the server prints them: JSON objects."""
    formatter = JsonFormatter("%(levelname)s %(name)s %(message)s")
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "wareports.access"
    ]


async def test_request_id_header_and_access_log_line(
    client: httpx.AsyncClient, account: TestAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    kept = await client.post(
        "/graphql",
        json={"query": "query TeamList { agents { email } }"},
        headers={**account.headers, "X-Request-ID": "edge-7f3a.42"},
    )
    assert kept.headers["x-request-id"] == "edge-7f3a.42"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    long = await client.get("/healthz", headers={"X-Request-ID": "a" * 129})
    assert long.headers["x-request-id"] != "a" * 129
    lines = access_lines(caplog)
    assert len(lines) == 3
    graphql_line, health_line, _ = lines
    assert graphql_line["duration_ms"] >= 0
    del graphql_line["duration_ms"]
    assert graphql_line == {
        "levelname": "INFO",
        "name": "wareports.access",
        "message": "POST /graphql 200",
        "request_id": "edge-7f3a.42",
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "account_id": account.id,
        "operation": "TeamList",
    }
    assert health_line["request_id"] == made.headers["x-request-id"]
    assert health_line["account_id"] is None
    assert health_line["operation"] is None


async def test_masked_errors_carry_the_request_id(
    client: httpx.AsyncClient, account: TestAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database said something private")

    monkeypatch.setattr(resolvers.entities, "list_agents", broken)
    response = await client.post(
        "/graphql",
        json={"query": "{ agents { email } }"},
        headers={**account.headers, "X-Request-ID": "trace-123"},
    )
    assert response.headers["x-request-id"] == "trace-123"
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "trace-123"}


async def test_an_unhandled_exception_is_a_coded_500_with_the_request_id(
    app: Starlette, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash(_request: Request) -> None:
        raise RuntimeError("boom")

    app.router.routes.append(Route("/crash", crash))
    response = await client.get("/crash", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "crash-1"
    assert response.json() == {
        "errors": [
            {
                "message": "Internal server error",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "crash-1"},
            }
        ]
    }
    (line,) = access_lines(caplog)
    assert (line["levelname"], line["status"], line["path"]) == ("ERROR", 500, "/crash")


@contextmanager
def server_logging(level: str) -> Iterator[None]:
    """The server's own logging configuration (JSON lines on stdout), undone afterwards."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", *QUIET_LOGGERS]
    saved = [
        (
            logging.getLogger(name),
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).level,
        )
        for name in names
    ]
    dictConfig(logging_config(Settings(log_format="json", log_level=level)))
    try:
        yield
    finally:
        for logger, handlers, old_level in saved:
            logger.handlers[:] = handlers
            logger.setLevel(old_level)


def printed_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


async def test_secrets_never_reach_the_logs(
    client: httpx.AsyncClient, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    account = await create_test_account(engine)
    secret_app, verify_token = "app-secret-5d1f0c", "verify-token-77ab2e"
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO channel (account_id, phone_number_id, display_number, app_secret,"
                " verify_token) VALUES (:a, '4242', '+33100000000', :s, :v)"
            ),
            {"a": account.id, "s": secret_app, "v": verify_token},
        )
    capsys.readouterr()
    with server_logging("DEBUG"):
        await client.post(
            "/graphql", json={"query": "{ agents { email } }"}, headers=account.headers
        )
        await client.post(
            "/graphql", json={"query": "{ nope }"}, headers={"Authorization": "Bearer wr_wrong"}
        )
        handshake = {
            "hub.mode": "subscribe",
            "hub.verify_token": verify_token,
            "hub.challenge": "1",
        }
        await client.get("/webhooks/whatsapp", params=handshake)
        await client.post(
            "/webhooks/whatsapp",
            content=json.dumps(WEBHOOK_FOR_4242).encode(),
            headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
        )
        await client.get(f"/exports/{account.token}?token={account.token}")
        await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    lines = printed_lines(capsys)
    access = [line for line in lines if line["logger"] == "wareports.access"]
    assert [line["message"] for line in access] == [
        "POST /graphql 200",
        "POST /graphql 401",
        "GET /webhooks/whatsapp 200",
        "POST /webhooks/whatsapp 401",
        "GET /exports/{token} 403",
        "GET /metrics 404",
    ]
    printed = json.dumps(lines)
    for secret in (account.token, "wr_wrong", verify_token, secret_app, METRICS_TOKEN):
        assert secret not in printed


def test_server_logging_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with server_logging("INFO"):
        logging.getLogger("wareports.access").info(
            "GET /healthz 200", extra={"request_id": "r1", "status": 200}
        )
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /x?token=secret" 200')
        logging.getLogger("aiosqlite").debug("executing INSERT ... ('app-secret',)")
        logging.getLogger("uvicorn.error").info(
            "Started server", extra={"color_message": "\x1b[1mStarted\x1b[0m server"}
        )
    record, started = printed_lines(capsys)
    assert started["message"] == "Started server" and "color_message" not in started
    assert {key: record[key] for key in ("level", "logger", "message", "request_id", "status")} == {
        "level": "INFO",
        "logger": "wareports.access",
        "message": "GET /healthz 200",
        "request_id": "r1",
        "status": 200,
    }
    assert "time" in record and "process" in record


# -- two workers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def seed_stale(
    engine: AsyncEngine, account_id: int, now: int, stale: int, fresh: int
) -> None:
    """`stale` open conversations whose last message is more than a day old, `fresh` recent."""
    async with engine.begin() as connection:
        for number in range(stale + fresh):
            last = now - 2 * 86_400 - number * 60 if number < stale else now - 3_600
            contact = await connection.execute(
                text("INSERT INTO contact (account_id, phone) VALUES (:a, :p) RETURNING id"),
                {"a": account_id, "p": f"+3361{account_id:03d}{number:05d}"},
            )
            await connection.execute(
                text(
                    "INSERT INTO conversation (account_id, contact_id, source, source_explicit,"
                    " direction, status, started_at, first_inbound_at, last_message_at,"
                    " auto_closed, message_count, inbound_count, outbound_count)"
                    " VALUES (:a, :c, 'INBOUND', false, 'INBOUND', 'OPEN', :t, :t, :t, false,"
                    " 0, 0, 0)"
                ),
                {"a": account_id, "c": contact.scalar_one(), "t": last},
            )


async def test_two_workers_close_each_stale_conversation_once(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    now = int(time.time())
    accounts = [await create_test_account(engine, f"Shop {n}") for n in range(3)]
    for account in accounts:
        await seed_stale(engine, account.id, now, stale=40, fresh=3)
    port = free_port()
    log_file = tmp_path / "server.log"
    environment = dict(
        os.environ,
        WAREPORTS_DATABASE_URL=database_url,
        WAREPORTS_SECRET_KEY="two-workers",
        WAREPORTS_AUTOCLOSE_INTERVAL_SECONDS="0.05",
        WAREPORTS_METRICS="open",
    )
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_file.open("w") as output:
        server = await asyncio.create_subprocess_exec(
            WAREPORTS, "serve", "--workers", "2", "--port", str(port),
            stdout=output, stderr=subprocess.STDOUT, env=environment,
        )  # fmt: skip
        try:
            closed, exposition = await wait_for_closing(engine, port, expected=120)
        finally:
            server.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(server.wait(), 60)
    metrics = samples(exposition)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert code == 0
    assert closed == 120
    rows = await engine_rows(
        engine,
        "SELECT COUNT(*), SUM(CASE WHEN closed_at = last_message_at + 86400 AND auto_closed"
        " AND closed_by_id IS NULL AND status = 'CLOSED' THEN 1 ELSE 0 END) FROM conversation"
        " WHERE last_message_at < :cut",
        cut=now - 86_400,
    )
    assert rows == [(120, 120)]
    still_open = await engine_rows(
        engine, "SELECT COUNT(*) FROM conversation WHERE closed_at IS NULL AND status = 'OPEN'"
    )
    assert still_open == [(9,)]
    # each conversation closed by exactly one pass of one worker: the passes' counts add up
    reported = sum(
        int(match.group(1))
        for line in lines
        if (match := re.fullmatch(r"auto-closed (\d+) conversation\(s\)", line.get("message", "")))
    )
    assert reported == 120
    pids = {line.get("process") for line in lines}
    assert "Traceback" not in log_file.read_text()
    assert not [line for line in lines if line.get("level") == "ERROR"], pids
    http_total = sample(
        metrics, "wareports_http_requests_total", method="GET", route="/readyz", status="200"
    )
    assert http_total is not None and http_total >= 1


async def wait_for_closing(engine: AsyncEngine, port: int, expected: int) -> tuple[int, str]:
    """Wait (at most 60 s) for the server to be ready and to have closed `expected` rows;
    then the server's metrics."""
    deadline = time.monotonic() + 60
    ready = False
    closed = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if not ready:
                try:
                    ready = (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    continue
            found = await engine_rows(
                engine, "SELECT COUNT(*) FROM conversation WHERE closed_at IS NOT NULL"
            )
            closed = int(found[0][0])
            if ready and closed >= expected:
                await asyncio.sleep(0.5)  # more passes run: they must find nothing left
                return closed, (await http.get("/metrics")).text
    raise AssertionError(f"after 60 s: ready={ready}, closed={closed} of {expected}")


async def engine_rows(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(sql), params)).all()]


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [
        name for name in Settings.model_fields if f"| `WAREPORTS_{name.upper()}` |" not in table
    ]
    assert missing == [], "add these settings to the README's configuration table"


async def test_ingestion_requests_move_the_ingested_counters(database_url: str) -> None:
    from tests.ingest import support as ingest

    async with serving(make_settings(database_url, metrics="open")) as (app, http):
        account = await create_test_account(app.state.engine)
        await ingest.add_channel(app.state.engine, account.id)
        payload = ingest.inbound("wamid.metrics1", "33612345678", 1_764_000_000)
        assert (await ingest.post_webhook(http, payload)).status_code == 200
        assert (await ingest.post_webhook(http, payload)).status_code == 200  # redelivery
        assert (await ingest.post_webhook(http, payload, secret="wrong")).status_code == 401
        event = {"id": "e1", "type": "agent.upserted", "at": "2025-11-24T16:00:00Z"}
        event |= {"email": "zoe@acme.test", "name": "Zoe"}
        assert (await ingest.post_events(http, account, [event])).status_code == 200
        assert (await ingest.post_events(http, account, [event])).status_code == 200
        assert (await http.get("/w/no-such-button")).status_code == 404
        found = samples((await http.get("/metrics")).text)

    ingested = "wareports_ingested_total"
    assert sample(found, ingested, kind="webhook", outcome="stored") == 1
    assert sample(found, ingested, kind="webhook", outcome="duplicate") == 1
    assert sample(found, ingested, kind="webhook", outcome="unauthorized") == 1
    assert sample(found, ingested, kind="event", outcome="stored") == 1
    assert sample(found, ingested, kind="event", outcome="duplicate") == 1
    assert sample(found, ingested, kind="click", outcome="unknown_button") == 1


async def test_export_tokens_never_reach_the_access_log_and_events_lines_name_the_account(
    client: httpx.AsyncClient, account: TestAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = "capability-token-that-must-not-be-logged"
    redirected = await client.get(f"/exports/{secret}/", follow_redirects=False)
    missing = await client.get(f"/exports/{secret}/x")
    assert (redirected.status_code, missing.status_code) == (307, 404)
    events = await client.post("/v1/events", json={"events": []}, headers=account.headers)
    assert events.status_code == 200, events.text
    lines = access_lines(caplog)
    assert [line["path"] for line in lines] == ["/exports/{redacted}"] * 2 + ["/v1/events"]
    ours = [record for record in caplog.records if record.name.startswith("wareports")]
    assert ours and not [record for record in ours if secret in str(record.__dict__)]
    assert lines[-1]["account_id"] == account.id
