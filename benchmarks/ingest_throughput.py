"""Ingestion throughput of a real `wareports serve`, against a bare Starlette endpoint's ceiling.

    .venv/bin/python benchmarks/ingest_throughput.py [--database-url URL] [--messages 4000]
        [--senders 32] [--processes 4] [--events 20000] [--quick]

Without --database-url: a fresh SQLite file in a temporary directory. With a PostgreSQL URL
(postgresql+asyncpg://postgres@127.0.0.1:5432/wareports_bench) that database is dropped and
created again (never `test` nor `postgres`), as a copy of --template when given. Setup goes
through the real CLI (migrate, account, channel, token), then `wareports serve` (one process)
and benchmarks/bare_endpoint.py run as subprocesses. A load generator of --processes OS
processes shares --senders keep-alive connections (raw asyncio HTTP/1.1); every body is built
and signed before the clock starts.

Phases: bare (the bare endpoint, the same bodies as messages), messages (single-message signed
webhooks), statuses (sent, delivered, read of --messages outbound wamids not recorded yet),
events (POST /v1/events, batches of 500, 4 senders: message.sent recording those wamids, 1 in
10 conversation.tagged), late statuses (failed, for each of those messages: a status that moves
the delivery figures of a message already counted), sequential (one sender), offered (open
loop: 1,000 messages/s offered for 5 s over 64 connections, latency from each scheduled
instant). A 503 is retried after its
Retry-After and counted; any other non-200 is an error (exit code 1). Then the reports are read
through GraphQL, compared with what was sent and with the same reports after `wareports
rebuild-aggregates`. --quick: 1,000 messages, 5,000 events, 200 sequential, 2 s offered.
The CLI and the server import whatever `PYTHONPATH` points at (default: this checkout).
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import multiprocessing as mp
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

PHONE_NUMBER_ID = "1000000001"
OTHER_NUMBER_ID = "1000000002"  # another account's number (`Beside`)
DISPLAY_NUMBER = "+33100000001"
APP_SECRET = "bench-secret"  # noqa: S105  (a throwaway benchmark secret)
SECRET_KEY = "bench-secret-key-0123456789abcdef"  # noqa: S105
CONTACTS = 5000
AGENTS = [f"agent{n}@example.com" for n in range(10)]
TAGS = ["Sales", "Support", "Billing", "Urgent", "Returns"]
EVENTS_PER_BATCH = 500
ZONE = "Europe/Paris"
HERE = Path(__file__).resolve().parent
WAREPORTS = Path(sys.executable).with_name("wareports")  # api/cli.py has no __main__ block
QUERY = """{ summaryReport(filter: {from: "%(d1)s", to: "%(d2)s"}) {
  totals { conversations messages inboundMessages outboundMessages distinctContacts
           closedConversations avgFirstResponseSeconds deliveredMessages readMessages
           failedMessages }
  daily { start metrics { conversations messages outboundMessages } } }
  agentReport(filter: {from: "%(d1)s", to: "%(d2)s"}) {
    rows { agent { email } sentMessages metrics { conversations messages } } }
  tagReport(filter: {from: "%(d1)s", to: "%(d2)s"}) {
    rows { tag { name } metrics { conversations messages } } } }"""


# ---- request bodies (built before any clock starts) ----


def wa_id(n: int) -> str:
    return f"3360000{n % CONTACTS:05d}"


def envelope(value: dict[str, Any], number: str = PHONE_NUMBER_ID) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_NUMBER[1:],
            "phone_number_id": number,
        },
        **value,
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(body).encode()


def message_body(n: int, wamid: str, timestamp: int) -> bytes:
    contact = {"profile": {"name": f"Contact {n % CONTACTS}"}, "wa_id": wa_id(n)}
    message = {
        "from": wa_id(n),
        "id": wamid,
        "timestamp": str(timestamp),
        "type": "text",
        "text": {"body": f"message {n}"},
    }
    return envelope({"contacts": [contact], "messages": [message]})


# The phases' instants, seconds before the run starts (an hour of a busy number, in order):
# contacts write, then agents answer them (events), then the last quarter hour (sequential,
# offered). A message older than its conversation's last one takes the general path; real
# traffic is mostly in order.
WINDOWS = {"bench": (3540, 2400), "events": (2300, 1200), "seq": (1100, 600), "open": (500, 60)}


def messages(prefix: str, first: int, count: int) -> list[bytes]:
    """`count` single-message webhooks, contacts first..first+count (mod 5000), in the phase's
    window (`WINDOWS`)."""
    earliest, latest = WINDOWS[prefix]
    start, span = int(time.time()) - earliest, earliest - latest
    return [
        message_body(first + i, f"wamid.{prefix}.{i}", start + i * span // max(count, 1))
        for i in range(count)
    ]


def statuses(count: int) -> list[bytes]:
    """sent, delivered, read of wamid.out.0..count-1, interleaved by blocks of 100 messages."""
    start, bodies = int(time.time()) - 3000, []
    for block in range(0, count, 100):
        for step, status in enumerate(("sent", "delivered", "read")):
            for n in range(block, min(block + 100, count)):
                instant = str(start + n * 2000 // count + step)
                entry = dict(id=f"wamid.out.{n}", status=status, timestamp=instant)
                entry["recipient_id"] = wa_id(n)
                bodies.append(envelope({"statuses": [entry]}))
    return bodies


def late_failures(count: int) -> list[bytes]:
    """failed (with its error) for wamid.out.0..count-1 once they are recorded and read: each
    moves the delivery figures of a message the aggregates count already."""
    start, bodies = int(time.time()) - 1000, []
    for n in range(count):
        entry: dict[str, Any] = dict(id=f"wamid.out.{n}", status="failed")
        entry.update(timestamp=str(start + n * 900 // max(count, 1)), recipient_id=wa_id(n))
        entry["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
        bodies.append(envelope({"statuses": [entry]}))
    return bodies


def events(count: int, outbound: int) -> tuple[list[bytes], int]:
    """Batches of message.sent (the first `outbound` record wamid.out.N), 1 in 10 tagging."""
    earliest, latest = WINDOWS["events"]
    start, span, batch, bodies, sent = int(time.time()) - earliest, earliest - latest, [], [], 0
    for j in range(count):
        at = datetime.fromtimestamp(start + j * span // count, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if j % 10 == 9:  # the contact of the message.sent just before it has a conversation
            tag = TAGS[(j // 10) % len(TAGS)]
            event = dict(id=f"evt-{j}", type="conversation.tagged", at=at, tag=tag)
            event["phone"] = f"+{wa_id(sent - 1)}"
        else:
            wamid = f"wamid.out.{sent}" if sent < outbound else f"wamid.evt.{sent}"
            event = dict(id=f"evt-{j}", type="message.sent", at=at, phone=f"+{wa_id(sent)}")
            event.update(messageId=wamid, agentEmail=AGENTS[sent % len(AGENTS)])
            sent += 1
        batch.append(event)
        if len(batch) == EVENTS_PER_BATCH or j == count - 1:
            bodies.append(json.dumps({"events": batch}).encode())
            batch = []
    return bodies, sent


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def webhook_requests(port: int, bodies: list[bytes]) -> list[bytes]:
    def signature(body: bytes) -> str:
        return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()

    return [
        http_request(port, "/webhooks/whatsapp", b, {"X-Hub-Signature-256": signature(b)})
        for b in bodies
    ]


# ---- the load generator: raw HTTP/1.1 keep-alive over asyncio streams ----


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    async def send(self, data: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        for attempt in range(2):
            if self.writer is None or self.writer.is_closing():
                await self.open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(data)
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                partial = getattr(exc, "partial", b"")
                if attempt or partial:  # a keep-alive closed by the server: send again once
                    raise
                self.writer = None
                self.reconnects += 1
                continue
            lines = head[:-4].split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"content-length" in headers:
                body = await self.reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                body = b""
                while size := int((await self.reader.readuntil(b"\r\n"))[:-2], 16):
                    body += (await self.reader.readexactly(size + 2))[:-2]
                await self.reader.readuntil(b"\r\n")
            else:
                body = await self.reader.read()
            if headers.get(b"connection", b"").lower() == b"close":
                self.writer.close()
                self.writer = None
            return status, headers, body
        raise AssertionError("unreachable")


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.retries = 0
        self.waited = 0
        self.errors: list[str] = []
        self.statuses: Counter[int] = Counter()


async def exchange(connection: Connection, data: bytes, began: float, stats: Stats) -> None:
    """Send until a non-503 answer; record the latency from `began`, the retries, the errors."""
    while True:
        try:
            status, headers, body = await connection.send(data)
        except (OSError, asyncio.IncompleteReadError) as exc:
            stats.errors.append(f"connection: {exc!r}")
            connection.writer = None
            return
        stats.statuses[status] += 1
        if status == 503 and b"retry-after" in headers:
            stats.retries += 1
            try:
                delay = float(headers[b"retry-after"])
            except ValueError:
                delay = 1.0
            await asyncio.sleep(delay)
            continue
        stats.latencies.append(time.monotonic() - began)
        if status != 200:
            stats.errors.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        return


async def load(worker: int, job: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    requests: list[bytes] = job["requests"]
    processes, stats = job["processes"], Stats()
    count = job["connections"] // processes + (worker < job["connections"] % processes)
    connections = [Connection(job["port"]) for _ in range(count)]
    try:
        await asyncio.gather(*(c.open() for c in connections))
        shared["ready"].wait(timeout=120)
    except BaseException:
        shared["ready"].abort()
        raise
    shared["go"].wait(timeout=120)
    t0, cpu = shared["t0"].value, time.process_time()
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    if job["rate"] is None:  # closed loop: every connection takes the next request when free

        async def sender(connection: Connection) -> None:
            while True:
                with shared["next"].get_lock():
                    index = shared["next"].value
                    shared["next"].value += 1
                if index >= len(requests):
                    return
                await exchange(connection, requests[index], time.monotonic(), stats)

        await asyncio.gather(*(sender(c) for c in connections))
    else:  # open loop: request i is due at t0 + i / rate, whatever the answers before it
        pool: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in connections:
            pool.put_nowait(connection)

        async def scheduled(index: int, due: float) -> None:
            if pool.empty():
                stats.waited += 1
            connection = await pool.get()
            try:
                await exchange(connection, requests[index], due, stats)
            finally:
                pool.put_nowait(connection)

        tasks = []
        for index in range(worker, len(requests), processes):
            due = t0 + index / job["rate"]
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(scheduled(index, due)))
        await asyncio.gather(*tasks)
    end = time.monotonic()
    await asyncio.gather(*(c.close() for c in connections))
    reconnects = sum(c.reconnects for c in connections)
    return {**vars(stats), "end": end, "cpu": time.process_time() - cpu, "reconnects": reconnects}


def worker_main(worker: int, job: dict[str, Any], shared: dict[str, Any], out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        out.put(runner.run(load(worker, job, shared)))


def run_phase(name: str, port: int, requests: list[bytes], items: int, **options: Any) -> dict:
    """Run one phase over `options["senders"]` connections shared by up to --processes processes."""
    connections, rate = options["senders"], options.get("rate")
    processes = max(1, min(options["processes"], connections))
    context = mp.get_context("fork")
    shared: dict[str, Any] = {
        "ready": context.Barrier(processes + 1),
        "go": context.Event(),
        "t0": context.Value("d", 0.0),
        "next": context.Value("q", 0),
    }
    job = {
        "requests": requests,
        "port": port,
        "connections": connections,
        "processes": processes,
        "rate": rate,
    }
    out = context.Queue()
    workers = [
        context.Process(target=worker_main, args=(w, job, shared, out), daemon=True)
        for w in range(processes)
    ]
    for process in workers:
        process.start()
    results: list[dict[str, Any]] = []
    try:
        shared["ready"].wait(timeout=120)
        t0 = shared["t0"].value = time.monotonic() + 0.05
        shared["go"].set()
        while len(results) < processes:
            try:
                results.append(out.get(timeout=2))
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in workers):
                    raise RuntimeError(f"a load process of phase {name} died") from None
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()
            process.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    seconds = max(r["end"] for r in results) - t0
    errors = [e for r in results for e in r["errors"]]
    statuses = sum((Counter(r["statuses"]) for r in results), Counter())
    return {
        "phase": name,
        "requests": len(requests),
        "items": items,
        "seconds": round(seconds, 3),
        "per_second": round(items / seconds, 1),
        "requests_per_second": round(len(requests) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "retries": sum(r["retries"] for r in results),
        "errors": len(errors),
        "error_samples": errors[:5],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "client_cpu_seconds": round(sum(r["cpu"] for r in results), 2),
        "reconnects": sum(r["reconnects"] for r in results),
        "queued_sends": sum(r["waited"] for r in results),
        "connections": connections,
        "processes": processes,
        **({"offered_per_second": rate} if rate else {}),
    }


def percentile(values: list[float], q: float) -> float:
    return values[max(0, math.ceil(q * len(values)) - 1)] if values else math.nan


# ---- the database, the CLI and the servers ----


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database or ""


async def recreate_postgres(url: str, template: str | None = None) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    if name in ("", "test", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop the database {name!r}: choose another name")
    connection = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()


async def stored_counts(url: str, account: int) -> dict[str, int]:
    """Straight from the account's rows: distinct wamids, outbound messages read, statuses
    waiting."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    queries = {
        "distinct_wamids": "SELECT count(DISTINCT wamid) FROM message WHERE account_id = :a",
        "outbound_read": "SELECT count(*) FROM message WHERE wamid LIKE 'wamid.out.%' "
        "AND status = 'read' AND account_id = :a",
        "outbound_failed": "SELECT count(*) FROM message WHERE wamid LIKE 'wamid.out.%' "
        "AND status = 'failed' AND account_id = :a",
        "pending_statuses": "SELECT count(*) FROM pending_status WHERE account_id = :a",
    }
    try:
        async with engine.connect() as connection:
            return {
                k: (await connection.execute(text(q), {"a": account})).scalar_one()
                for k, q in queries.items()
            }
    finally:
        await engine.dispose()


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([str(WAREPORTS), *args], env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"wareports {' '.join(args)} failed: {done.stderr.strip()}")
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, port: int) -> None:
        self.port = port
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [*self.command, "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{self.name} did not answer /healthz on port {port}:\n{tail}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def reports(port: int, token: str) -> dict[str, Any]:
    today = datetime.now(ZoneInfo(ZONE)).date()
    query = QUERY % {"d1": today - timedelta(days=1), "d2": today}
    answer = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    document = answer.json()
    if answer.status_code != 200 or document.get("errors"):
        raise SystemExit(f"GraphQL failed ({answer.status_code}): {answer.text[:1000]}")
    return document["data"]


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


# ---- the run ----


def table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'phase':<11}{'requests':>9}{'items':>8}{'seconds':>9}{'per second':>12}"
        f"{'p50 ms':>10}{'p99 ms':>10}{'retries':>8}{'errors':>7}{'client cpu s':>13}"
        f"{'items/txn':>10}{'ms/txn':>8}"
    )
    for r in rows:
        print(
            f"{r['phase']:<11}{r['requests']:>9}{r['items']:>8}{r['seconds']:>9.2f}"
            f"{r['per_second']:>12.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
            f"{r['retries']:>8}{r['errors']:>7}{r['client_cpu_seconds']:>13.2f}"
            f"{r.get('items_per_transaction', 0):>10.1f}{r.get('ms_per_transaction', 0):>8.1f}"
        )


def setup(env: dict[str, str], service_levels: bool = False) -> tuple[int, str]:
    """The real CLI, as a user would: migrate, an account, its number, an admin token (and,
    with `service_levels`, office hours and targets: every change is measured against them)."""
    cli(env, "migrate")
    account = cli(env, "account", "create", "--name", "Bench", "--timezone", ZONE)["id"]
    if service_levels:
        hours = "mon-fri 09:00-12:30,13:30-18:00; sat 10:00-14:00"
        cli(env, "account", "set-office-hours", "--account", str(account), "--schedule", hours)
        targets = ("--first-response", "15m", "--resolution", "8h")
        cli(env, "account", "set-sla", "--account", str(account), *targets)
    channel = f"--phone-number-id {PHONE_NUMBER_ID} --display-number {DISPLAY_NUMBER} "
    channel += f"--app-secret {APP_SECRET} --verify-token verify"
    cli(env, "channel", "add", "--account", str(account), *channel.split())
    token = cli(env, "token", "create", "--account", str(account), "--scopes", "admin")["token"]
    other = cli(env, "account", "create", "--name", "Beside", "--timezone", ZONE)["id"]
    channel = f"--phone-number-id {OTHER_NUMBER_ID} --display-number +33100000002 "
    channel += f"--app-secret {APP_SECRET} --verify-token verify-other"
    cli(env, "channel", "add", "--account", str(other), *channel.split())
    return account, token


class Beside(threading.Thread):
    """Another account's webhooks, one at a time every `interval` seconds, while a phase runs:
    how long one account's large batches hold another account's traffic."""

    def __init__(self, port: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.latencies: list[float] = []
        self.errors = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        url = f"http://127.0.0.1:{self.port}/webhooks/whatsapp"
        with httpx.Client(timeout=60) as http:
            n = 0
            while not self.stopping.is_set():
                contact = {"profile": {"name": "Other"}, "wa_id": f"3369000{n % 100:05d}"}
                message: dict[str, Any] = {
                    "id": f"wamid.beside.{n}",
                    "timestamp": str(int(time.time()) - 60),
                }
                message.update({"from": contact["wa_id"], "type": "text", "text": {"body": "hi"}})
                body = envelope({"contacts": [contact], "messages": [message]}, OTHER_NUMBER_ID)
                digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
                began = time.perf_counter()
                answer = http.post(
                    url,
                    content=body,
                    headers={
                        "X-Hub-Signature-256": "sha256=" + digest,
                        "Content-Type": "application/json",
                    },
                )
                self.latencies.append(1000 * (time.perf_counter() - began))
                self.errors += answer.status_code != 200
                n += 1
                self.stopping.wait(self.interval)

    def report(self) -> dict[str, Any]:
        self.stopping.set()
        self.join()
        values = sorted(self.latencies) or [0.0]
        return {
            "sent": len(self.latencies),
            "errors": self.errors,
            "p50_ms": round(percentile(values, 0.5), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(max(values), 1),
        }


def fold_figures(port: int) -> dict[str, float]:
    """The writer's counters: transactions, items, seconds folding (GET /metrics)."""
    wanted = {
        "wareports_ingest_transaction_items_count": "transactions",
        "wareports_ingest_transaction_items_sum": "items",
    }
    found = {"transactions": 0.0, "items": 0.0, "fold_seconds": 0.0}
    with contextlib.suppress(httpx.HTTPError):
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text.splitlines():
            name, _, value = line.rpartition(" ")
            if name in wanted:
                found[wanted[name]] += float(value)
            elif name.startswith("wareports_ingest_fold_seconds_sum"):
                found["fold_seconds"] += float(value)
    return found


def print_metrics(port: int) -> None:
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    if metrics.status_code != 200:
        print(f"GET /metrics: {metrics.status_code}")
        return
    print("metrics (lines with ingest, queue or fold; no buckets):")
    for line in metrics.text.splitlines():
        if line.startswith("#") or "_bucket{" in line or "_created" in line:
            continue
        if any(word in line for word in ("ingest", "queue", "fold")):
            print(f"    {line}")


def check_counts(
    data: dict[str, Any], counts: dict[str, int], inbound: int, sent: int, outbound: int
) -> tuple[dict[str, int], dict[str, int]]:
    """What the reports and the tables hold against what was sent; prints both."""
    totals = data["summaryReport"]["totals"]
    expected = {
        "messages": inbound + sent,
        "inboundMessages": inbound,
        "outboundMessages": sent,
        "distinct_wamids": inbound + sent,
        # Read (statuses that waited for their message), then failed (the late statuses).
        "outbound_read": 0,
        "outbound_failed": min(outbound, sent),
        "deliveredMessages": 0,
        "readMessages": 0,
        "failedMessages": min(outbound, sent),
        "pending_statuses": max(0, outbound - sent),
        "agent sentMessages": sent,
    }
    found = {
        **{
            k: totals[k]
            for k in (
                "messages",
                "inboundMessages",
                "outboundMessages",
                "deliveredMessages",
                "readMessages",
                "failedMessages",
            )
        },
        **counts,
        "agent sentMessages": sum(r["sentMessages"] for r in data["agentReport"]["rows"]),
    }
    for key, want in expected.items():
        mark = "" if found[key] == want else "  <-- NO"
        print(f"    {key}: stored {found[key]}, expected {want}{mark}")
    print(f"    totals: {json.dumps(totals)}")
    return found, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--offered-rate", type=int, default=1000)
    parser.add_argument("--offered-seconds", type=float, default=5.0)
    parser.add_argument("--offered-connections", type=int, default=64)
    parser.add_argument(
        "--template",
        default=None,
        help="PostgreSQL: create the database as a copy of this one (e.g. a `wareports bench` "
        "database: ingestion into tables that already hold a million conversations)",
    )
    parser.add_argument("--quick", action="store_true", help="1000 messages, 5000 events...")
    parser.add_argument(
        "--service-levels",
        action="store_true",
        help="give the account office hours and targets (each change is measured against them)",
    )
    args = parser.parse_args()
    if args.quick:
        args.messages, args.events, args.sequential, args.offered_seconds = 1000, 5000, 200, 2.0
    with tempfile.TemporaryDirectory(prefix="wareports-ingest-") as directory:
        try:
            sys.exit(run(args, Path(directory)))
        except KeyboardInterrupt:
            sys.exit(130)


def run(args: argparse.Namespace, directory: Path) -> int:
    url = args.database_url or f"sqlite+aiosqlite:///{directory}/bench.db"
    engine = "postgresql" if url.startswith("postgresql") else "sqlite"
    if engine == "postgresql":
        asyncio.run(recreate_postgres(url, args.template))
    env = {
        **os.environ,
        "WAREPORTS_DATABASE_URL": url,
        "WAREPORTS_RATE_LIMIT": "1000000/minute",
        "WAREPORTS_LOG_LEVEL": "WARNING",
        "WAREPORTS_SECRET_KEY": SECRET_KEY,
        "WAREPORTS_METRICS": "open",
        "BENCH_APP_SECRET": APP_SECRET,
    }
    code = subprocess.run(  # in the temporary directory: `-c` puts the cwd first on the path
        [sys.executable, "-c", "import api; print(api.__file__)"],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"{engine} {database_name(url) if engine == 'postgresql' else url}; code: {code}")
    account, token = setup(env, args.service_levels)
    if args.service_levels:
        print("the account has office hours and service-level targets")
    server = Server("wareports serve", [str(WAREPORTS), "serve"], env, directory / "server.log")
    bare = Server(
        "bare endpoint",
        [sys.executable, str(HERE / "bare_endpoint.py")],
        env,
        directory / "bare.log",
    )
    failures: list[str] = []
    try:
        bare.start(free_port())
        server.start(free_port())
        port, load = server.port, {"senders": args.senders, "processes": args.processes}
        rows = []

        def phase(name: str, target: int, requests: list[bytes], items: int, **kw: Any) -> None:
            print(f"... {name}: {len(requests)} requests", flush=True)
            before = fold_figures(target)
            row = run_phase(name, target, requests, items, **{**load, **kw})
            after = fold_figures(target)
            transactions = after["transactions"] - before["transactions"]
            if transactions:
                row["items_per_transaction"] = (after["items"] - before["items"]) / transactions
                seconds = after["fold_seconds"] - before["fold_seconds"]
                row["ms_per_transaction"] = 1000 * seconds / transactions
            rows.append(row)
            for sample in row["error_samples"]:
                print(f"    error: {sample}")
            if row["errors"]:
                failures.append(f"{name}: {row['errors']} errors")

        inbound = messages("bench", 0, args.messages)
        phase("bare", bare.port, webhook_requests(bare.port, inbound), args.messages)
        bare.stop()
        phase("messages", port, webhook_requests(port, inbound), args.messages)
        phase("statuses", port, webhook_requests(port, statuses(args.messages)), 3 * args.messages)
        batches, sent = events(args.events, args.messages)
        auth = {"Authorization": f"Bearer {token}"}
        events_requests = [http_request(port, "/v1/events", b, auth) for b in batches]
        beside = Beside(port)
        beside.start()
        phase("events", port, events_requests, args.events, senders=4)
        other = beside.report()
        failed = min(args.messages, sent)
        phase("late statuses", port, webhook_requests(port, late_failures(failed)), failed)
        sequential = messages("seq", args.messages, args.sequential)
        phase("sequential", port, webhook_requests(port, sequential), args.sequential, senders=1)
        offered_count = int(args.offered_rate * args.offered_seconds)
        offered = messages("open", args.messages + args.sequential, offered_count)
        phase(
            "offered",
            port,
            webhook_requests(port, offered),
            offered_count,
            senders=args.offered_connections,
            rate=args.offered_rate,
        )
        print()
        table(rows)
        ratio = rows[1]["per_second"] / rows[0]["per_second"]
        print(f"messages rate / bare rate: {ratio:.4f}")
        offered_row = rows[-1]
        print(
            f"offered {args.offered_rate}/s for {args.offered_seconds:g} s: achieved "
            f"{offered_row['per_second']:.1f}/s, {offered_row['queued_sends']} sends waited "
            "for a free connection"
        )

        print(
            f"another account's webhooks during the events phase (one every 20 ms): "
            f"{other['sent']} sent, {other['errors']} errors, p50 {other['p50_ms']} ms, "
            f"p99 {other['p99_ms']} ms, max {other['max_ms']} ms"
        )
        if other["errors"]:
            failures.append(f"another account's webhooks: {other['errors']} errors")
        print_metrics(port)
        before = reports(port, token)
        server.stop()
        counts = asyncio.run(stored_counts(url, account))
        rebuilt = cli(env, "rebuild-aggregates", "--account", str(account))
        server.start(free_port())
        after = reports(server.port, token)
        diff = differences(before, after)
        print(
            f"rebuild-aggregates: {rebuilt.get('seconds')} s; reports equal rebuild: "
            f"{'yes' if not diff else 'NO'}"
        )
        for line in diff[:40]:
            print(f"    {line}")
        if diff:
            failures.append(f"reports differ after rebuild-aggregates ({len(diff)} values)")

        inbound_sent = args.messages + args.sequential + offered_count
        print(
            f"sent: {inbound_sent} inbound messages (messages {args.messages} + sequential "
            f"{args.sequential} + offered {offered_count}), {sent} message.sent events"
        )
        found, expected = check_counts(before, counts, inbound_sent, sent, args.messages)
        failures += [f"{k}: {found[k]} != {v}" for k, v in expected.items() if found[k] != v]
        summary = {
            "engine": engine,
            "code": code,
            "phases": rows,
            "messages_over_bare": round(ratio, 4),
            "beside_events": other,
            "reports_equal_rebuild": not diff,
            "stored": found,
            "expected": expected,
            "failures": failures,
        }
        print(json.dumps(summary, separators=(",", ":")))
    finally:
        server.stop()
        bare.stop()
        if failures and server.log.exists():  # the server's warnings and tracebacks, last ones
            print(
                "server log (last 60 lines):", *server.log.read_text().splitlines()[-60:], sep="\n"
            )
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    main()
