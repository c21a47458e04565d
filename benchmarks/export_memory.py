"""Benchmark: a year of DETAILS exported as CSV through the real server, rows/s and peak RSS.

Creates (or reuses) an account of 1,000,000 conversations over 365 days with the demo bulk
generator, starts the real app under uvicorn in a child process, asks `exportReportCsv` for the
link, downloads it with httpx streaming (counting rows, keeping nothing), and prints rows per
second and the server's peak resident memory (Linux VmHWM, reset just before the download, and
psutil samples every 20 ms).

    .venv/bin/python benchmarks/export_memory.py                      # SQLite ./export-bench.db
    .venv/bin/python benchmarks/export_memory.py --conversations 100000 --database /tmp/x.db
    .venv/bin/python benchmarks/export_memory.py \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/wareports_bench
"""

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psutil
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api import accounts
from ingest.demo import accounts_named, delete_account, generate
from models import Conversation
from models.db import create_engine, session_factory, transaction
from models.migrate import upgrade_to_head

ACCOUNT_NAME = "Export benchmark"
ZONE = "Europe/Paris"
# A fixed year, so a reused database and a fresh one export the same rows.
FIRST_DAY, LAST_DAY = date(2025, 11, 1), date(2026, 10, 31)
END = int(datetime(2026, 11, 1, tzinfo=ZoneInfo(ZONE)).timestamp())
EXPORT = """mutation($filter: ReportFilter!) {
  exportReportCsv(report: DETAILS, filter: $filter) { url filename } }"""
TARGET_ROWS_PER_SECOND = 50_000
TARGET_PEAK_MB = 300


@dataclass(frozen=True)
class Prepared:
    account_id: int
    token: str
    conversations: int


async def prepare(url: str, conversations: int, seed: int) -> Prepared:
    """The benchmark account with `conversations` conversations (reused when it has them)."""
    engine = create_engine(url)
    try:
        found = await accounts_named(engine, ACCOUNT_NAME)
        count = await _count(engine, found[0]) if found else -1
        if count != conversations:
            for account_id in found:
                await delete_account(engine, account_id)
            async with transaction(engine) as session:
                account = await accounts.create_account(session, ACCOUNT_NAME, ZONE)
                assert account.id is not None
                account_id = account.id
            print(f"generating {conversations:,} conversations over 365 days ...", flush=True)
            result = await generate(
                engine, account_id, conversations=conversations, days=365, seed=seed, end=END
            )
            print(f"  {result.messages:,} messages written in {result.seconds:.0f} s", flush=True)
        else:
            account_id = found[0]
            print(f"reusing {count:,} conversations of account {account_id}", flush=True)
        async with transaction(engine) as session:
            _, token = await accounts.create_token(
                session, account_id, ["reports:export"], name="export benchmark"
            )
        return Prepared(account_id, token, await _count(engine, account_id))
    finally:
        await engine.dispose()


async def _count(engine: object, account_id: int) -> int:
    async with session_factory(engine)() as session:  # type: ignore[arg-type]
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.account_id == account_id)  # type: ignore[arg-type]
            )
            or 0
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WAREPORTS_DATABASE_URL": url,
        "WAREPORTS_SECRET_KEY": secrets.token_urlsafe(32),
        "WAREPORTS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WAREPORTS_AUTOCLOSE_INTERVAL_SECONDS": "86400",  # keep the job off the measurement
        "WAREPORTS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(command, env=env, cwd=root)  # noqa: S603  (our own command line)


async def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start within 30 s")


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of a process; False when not possible."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def kernel_peak_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


async def sample_rss(process: psutil.Process, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.02)


async def measure(base: str, token: str, server_pid: int, expected: int) -> bool:
    process = psutil.Process(server_pid)
    headers = {"Authorization": f"Bearer {token}"}
    flt = {"from": FIRST_DAY.isoformat(), "to": LAST_DAY.isoformat()}
    async with httpx.AsyncClient(timeout=600.0) as client:
        answer = await client.post(
            f"{base}/graphql", json={"query": EXPORT, "variables": {"filter": flt}}, headers=headers
        )
        made = answer.json()["data"]["exportReportCsv"]
        before = process.memory_info().rss
        kernel = reset_peak(server_pid)
        peak, stop = [before], asyncio.Event()
        sampler = asyncio.create_task(sample_rss(process, peak, stop))
        lines = size = 0
        cpu_before = process.cpu_times()
        began = time.perf_counter()
        first_byte = None
        async with client.stream("GET", made["url"]) as response:
            assert response.status_code == 200, response.status_code
            async for chunk in response.aiter_raw():
                first_byte = first_byte or time.perf_counter() - began
                lines += chunk.count(b"\n")
                size += len(chunk)
        seconds = time.perf_counter() - began
        cpu_after = process.cpu_times()
        stop.set()
        await sampler
    rows = lines - 1  # the header; demo names hold no newline
    hwm = kernel_peak_bytes(server_pid) if kernel else None
    peak_bytes = max(peak[0], hwm or 0)
    rate = rows / seconds
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    print(f"file        {made['filename']} ({size / 1e6:.0f} MB)")
    print(f"rows        {rows:,} (expected {expected:,})")
    print(f"time        {seconds:.1f} s, first byte after {1000 * (first_byte or 0):.0f} ms")
    print(f"throughput  {rate:,.0f} rows/s (target >= {TARGET_ROWS_PER_SECOND:,})")
    print(f"server CPU  {cpu:.1f} s, {rows / cpu:,.0f} rows per CPU-second; load {load()}")
    how = "VmHWM and 20 ms samples" if hwm else "20 ms samples"
    print(
        f"server RSS  {before / 2**20:.0f} MiB before, peak {peak_bytes / 2**20:.0f} MiB "
        f"(target <= {TARGET_PEAK_MB} MiB; {how})"
    )
    small = peak_bytes <= TARGET_PEAK_MB * 2**20
    return rows == expected and rate >= TARGET_ROWS_PER_SECOND and small


def load() -> str:
    """The machine's load averages: on a shared machine, throughput depends on them."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="export-bench.db", help="SQLite file")
    parser.add_argument("--database-url", help="a full URL instead (e.g. PostgreSQL)")
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(args.database).resolve()}"
    upgrade_to_head(url)  # runs its own event loop
    prepared = asyncio.run(prepare(url, args.conversations, args.seed))
    port = free_port()
    server = start_server(url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base, server))
        print(f"engine      {url.split(':')[0]}")
        met = asyncio.run(measure(base, prepared.token, server.pid, prepared.conversations))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("targets met" if met else "TARGETS MISSED")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
