"""Webhook ingestion throughput: N signed WhatsApp messages posted through the ASGI app.

    .venv/bin/python benchmarks/ingest_throughput.py [--messages 1000] [--contacts 100]
        [--concurrency 1] [--database-url URL]

Without --database-url it uses a fresh SQLite file in a temporary directory (one process, as
`wareports serve` runs by default). Payloads are built and signed before the clock starts; the
figure is messages stored per second, each answered 200 only after its commit.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import tempfile
import time

import httpx

from api import accounts
from api.app import create_app
from api.settings import Settings
from models.db import transaction
from models.migrate import upgrade_to_head

PHONE_NUMBER_ID = "1000000001"
APP_SECRET = "benchmark-secret"  # noqa: S105  (a throwaway test secret)


def payload(index: int, contacts: int, start: int) -> bytes:
    wa_id = f"3360000{index % contacts:05d}"
    message = {
        "from": wa_id,
        "id": f"wamid.bench.{index}",
        "timestamp": str(start + index),
        "type": "text",
        "text": {"body": f"message {index}"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "33100000001", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": f"Contact {index % contacts}"}, "wa_id": wa_id}],
        "messages": [message],
    }
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"value": value, "field": "messages"}
    ]}]}  # fmt: skip
    return json.dumps(body).encode()


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


async def run(url: str, messages: int, contacts: int, concurrency: int) -> float:
    settings = Settings(database_url=url, secret_key=APP_SECRET, rate_limit="1000000/minute")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with transaction(app.state.engine) as session:
            account = await accounts.create_account(session, "Benchmark")
            assert account.id is not None
            await accounts.add_channel(
                session, account.id, PHONE_NUMBER_ID, "+33100000001", APP_SECRET, "verify"
            )
        start = int(time.time()) - messages - 60
        bodies = [payload(index, contacts, start) for index in range(messages)]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def worker() -> None:
                while not queue.empty():
                    body = queue.get_nowait()
                    response = await client.post(
                        "/webhooks/whatsapp", content=body, headers=signed(body)
                    )
                    if response.status_code != 200 or response.json()["messages"] != 1:
                        raise RuntimeError(
                            f"unexpected answer: {response.status_code} {response.text}"
                        )

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{directory}/bench.db"
        upgrade_to_head(url)
        seconds = asyncio.run(run(url, args.messages, args.contacts, args.concurrency))
    rate = args.messages / seconds
    engine = url.split("+", 1)[0].split(":", 1)[0]
    print(
        f"{args.messages} webhook messages ({args.contacts} contacts, concurrency "
        f"{args.concurrency}, {engine}) in {seconds:.2f} s: {rate:.0f} messages/second"
    )
    print(
        json.dumps(
            {"messages": args.messages, "seconds": round(seconds, 3), "per_second": round(rate, 1)}
        )
    )


if __name__ == "__main__":
    main()
