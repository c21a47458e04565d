"""Nothing acknowledged is lost: a real `wareports serve` killed (SIGKILL) during a burst of
webhooks and event batches, then restarted, holds every message and event it answered 200 for,
no half-written batch, and report aggregates equal to a rebuild from the rows it kept. And a
real `wareports serve --workers 2` (two processes, two writers) hit on the same contacts
answers every request 200 and keeps exact aggregates."""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest import aggregates as maintenance
from models.db import transaction
from tests.conftest import TestAccount, create_test_account
from tests.ingest.support import add_channel, inbound, sign
from tests.ingest.test_aggregates import aggregate_rows
from tests.service.test_ops import WAREPORTS, engine_rows, free_port

SENDERS = 12
BATCH = 8  # events per /v1/events batch
KILL_AFTER = 150  # acknowledged requests before the kill
T = int(time.time()) - 3 * 3600


@asynccontextmanager
async def server(database_url: str, log: Path, workers: int = 1) -> AsyncIterator[tuple[Any, int]]:
    """A real server (`workers` processes) on a free port, ready; killed on the way out if
    still running."""
    port = free_port()
    environment = dict(
        os.environ, WAREPORTS_DATABASE_URL=database_url, WAREPORTS_SECRET_KEY="durability"
    )
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("a") as output:
        process = await asyncio.create_subprocess_exec(
            WAREPORTS, "serve", "--port", str(port), "--workers", str(workers),
            stdout=output, stderr=subprocess.STDOUT, env=environment,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the server did not start; see {log}")
        yield process, port
    finally:
        if process.returncode is None:
            process.terminate() if workers > 1 else process.kill()  # the workers go with it
            await process.wait()


class Burst:
    """Senders posting until the server goes away, remembering what was acknowledged."""

    def __init__(self, port: int, who: TestAccount) -> None:
        self.port, self.who = port, who
        self.acknowledged_messages: set[str] = set()
        self.acknowledged_batches: set[int] = set()
        self.sent_batches: set[int] = set()
        self.acks = 0
        self.enough = asyncio.Event()

    async def sender(self, number: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as http:
            for round_ in range(10_000):
                try:
                    if round_ % 3 == 2:
                        await self.batch(http, number * 10_000 + round_)
                    else:
                        await self.message(http, f"m-{number}-{round_}", number + round_)
                except httpx.TransportError:
                    return  # the server is gone

    async def message(self, http: httpx.AsyncClient, wamid: str, serial: int) -> None:
        body = json.dumps(inbound(wamid, f"3363000{serial % 20:04d}", T + serial)).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        response = await http.post("/webhooks/whatsapp", content=body, headers=headers)
        assert response.status_code == 200, response.text
        self.acknowledged_messages.add(wamid)
        self.acked()

    async def batch(self, http: httpx.AsyncClient, serial: int) -> None:
        self.sent_batches.add(serial)
        response = await http.post(
            "/v1/events", json={"events": batch_events(serial)}, headers=self.who.headers
        )
        assert response.status_code == 200, response.text
        self.acknowledged_batches.add(serial)
        self.acked()

    def acked(self) -> None:
        self.acks += 1
        if self.acks >= KILL_AFTER:
            self.enough.set()


def batch_events(serial: int) -> list[dict[str, Any]]:
    phone = f"+3363000{serial % 20:04d}"
    events: list[dict[str, Any]] = []
    for n in range(BATCH):
        event: dict[str, Any] = {
            "id": f"b{serial}-{n}",
            "at": T + serial % 1000 + n,
            "phone": phone,
        }
        if n % 2:
            event |= {"type": "conversation.tagged", "tag": f"tag{n}"}
        else:
            event |= {"type": "message.sent", "messageId": f"out-{serial}-{n}"}
            event["agentEmail"] = f"agent{n}@acme.test"
        events.append(event)
    return events


async def test_a_killed_server_keeps_everything_it_acknowledged(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    who = await create_test_account(engine, "Durable")
    await add_channel(engine, who.id)
    log = tmp_path / "server.log"
    async with server(database_url, log) as (process, port):
        burst = Burst(port, who)
        senders = [asyncio.create_task(burst.sender(n)) for n in range(SENDERS)]
        await asyncio.wait_for(burst.enough.wait(), 120)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await asyncio.wait_for(asyncio.gather(*senders), 60)
    assert burst.acks >= KILL_AFTER

    async with server(database_url, log):  # restarts on what the killed one left
        stored = {row[0] for row in await engine_rows(engine, "SELECT wamid FROM message")}
        events = {
            row[0] for row in await engine_rows(engine, "SELECT event_id FROM ingested_event")
        }
    assert burst.acknowledged_messages <= stored
    for serial in burst.sent_batches:
        ids = {f"b{serial}-{n}" for n in range(BATCH)}
        kept = ids & events
        assert kept in (set(), ids), f"batch {serial} half written: {sorted(kept)}"
        if serial in burst.acknowledged_batches:
            assert kept == ids
        sent = {f"out-{serial}-{n}" for n in range(0, BATCH, 2)}
        assert sent <= stored if kept else not sent & stored
    kept_aggregates = await aggregate_rows(engine, who.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert await aggregate_rows(engine, who.id) == kept_aggregates
    assert "Traceback" not in log.read_text()


async def test_two_worker_processes_fold_the_same_contacts_exactly(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """Two processes each fold their share of a burst on the same few contacts (webhooks and
    event batches whose agents come in different orders): no deadlock, no lost update, no
    duplicate; the aggregates equal a rebuild and every message is stored once."""
    who = await create_test_account(engine, "Two workers")
    await add_channel(engine, who.id)
    log = tmp_path / "server.log"
    rounds = 12
    async with server(database_url, log, workers=2) as (_process, port):

        async def sender(number: int) -> tuple[set[str], set[int]]:
            burst = Burst(port, who)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                for round_ in range(rounds):
                    serial = number * 1_000 + round_
                    if round_ % 3 == 2:
                        await burst.batch(http, serial)
                    else:
                        await burst.message(http, f"w-{serial}", serial)
            return burst.acknowledged_messages, burst.acknowledged_batches

        answers = await asyncio.wait_for(asyncio.gather(*(sender(n) for n in range(SENDERS))), 240)
        claimed = await engine_rows(engine, "SELECT count(*) FROM ingested_event")
    messages = set().union(*(wamids for wamids, _ in answers))
    batches = set().union(*(serials for _, serials in answers))
    assert len(messages) == SENDERS * rounds * 2 // 3 and len(batches) == SENDERS * rounds // 3
    assert claimed[0][0] == len(batches) * BATCH
    stored = await engine_rows(engine, "SELECT wamid, count(*) FROM message GROUP BY wamid")
    sent = {f"out-{serial}-{n}" for serial in batches for n in range(0, BATCH, 2)}
    assert {wamid: count for wamid, count in stored} == dict.fromkeys(messages | sent, 1)
    kept_aggregates = await aggregate_rows(engine, who.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert await aggregate_rows(engine, who.id) == kept_aggregates
    output = log.read_text()
    assert "Traceback" not in output
    assert len(set(re.findall(r"Started server process \[(\d+)\]", output))) == 2
