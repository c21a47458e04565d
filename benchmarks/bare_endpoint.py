"""The ceiling of Python HTTP on this machine: a bare Starlette `POST /webhooks/whatsapp`.

    BENCH_APP_SECRET=... .venv/bin/python benchmarks/bare_endpoint.py --port 8001

It only checks X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret) and parses
the JSON body, then answers what wareports answers for one stored message. It stores nothing.
Served by uvicorn in one process with the options `wareports serve` uses (api/cli.py run_server).
`GET /healthz` answers 200. Started by benchmarks/ingest_throughput.py.
"""

import argparse
import hashlib
import hmac
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SECRET = os.environ.get("BENCH_APP_SECRET", "bench-secret").encode()
PREFIX = "sha256="


async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    header = request.headers.get("x-hub-signature-256", "")
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not header.startswith(PREFIX) or not hmac.compare_digest(
        expected, header[len(PREFIX) :].strip().lower()
    ):
        return JSONResponse({"errors": [{"message": "bad signature"}]}, status_code=401)
    try:
        json.loads(body)
    except ValueError as exc:
        return JSONResponse({"errors": [{"message": str(exc)}]}, status_code=400)
    return JSONResponse({"messages": 1, "duplicates": 0, "statuses": 0})


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/webhooks/whatsapp", receive, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
