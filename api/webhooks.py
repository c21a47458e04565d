"""`GET|POST /webhooks/whatsapp`: Meta's verification handshake and signed webhook deliveries."""

import logging
import secrets
import time

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from api.body import read_body
from api.observability import count_ignored_fields, count_ingested
from api.writing import busy, store
from ingest import whatsapp
from ingest.writer import WriterBusy
from models import Channel
from models.db import session_factory

log = logging.getLogger(__name__)

MAX_CHALLENGE_LENGTH = 256


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status_code)


async def verify(request: Request) -> Response:
    """Echo `hub.challenge` when `hub.verify_token` is the verify token of one of our numbers."""
    params = request.query_params
    token = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    # A NUL cannot be a stored token (and PostgreSQL refuses it in a query): refused unread.
    usable = token and "\x00" not in token and len(challenge) <= MAX_CHALLENGE_LENGTH
    if params.get("hub.mode") != "subscribe" or not usable:
        return PlainTextResponse("verification refused", status_code=403)
    async with session_factory(request.app.state.engine)() as session:
        known = await session.scalar(
            select(Channel.verify_token).where(Channel.verify_token == token)
        )
    if known is None or not secrets.compare_digest(known.encode(), token.encode()):
        return PlainTextResponse("verification refused", status_code=403)
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff"})


class ChannelCache:
    """The numbers' channels (app secret, account), looked up once per `TTL_SECONDS`: a busy
    number's deliveries then cost no query before they reach the writer. Only known numbers are
    kept, so a number added with `wareports channel add` is found at its first delivery."""

    TTL_SECONDS = 30.0

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.known: dict[str, tuple[Channel, float]] = {}

    async def named(self, numbers: set[str]) -> dict[str, Channel]:
        now = time.monotonic()
        fresh = {n: self.known[n][0] for n in numbers if n in self.known and self.known[n][1] > now}
        missing = numbers - set(fresh)
        if missing:
            async with session_factory(self.engine)() as session:
                found = await whatsapp.channels_named(session, missing)
            if len(self.known) > MAX_CACHED_CHANNELS:
                self.known.clear()
            for number, channel in found.items():
                self.known[number] = (channel, now + self.TTL_SECONDS)
            fresh |= found
        return fresh


MAX_CACHED_CHANNELS = 10_000


async def receive(request: Request) -> Response:
    """Store a signed delivery; 200 only once it is committed, so that Meta retries otherwise
    (503 with Retry-After when the writer's queue is full)."""
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    try:
        batch = whatsapp.parse(body)
    except whatsapp.MalformedPayload as exc:
        count_ingested("webhook", "invalid")
        return _error(400, str(exc))
    count_ignored_fields(batch.ignored_fields)
    channels = await request.app.state.channels.named(batch.numbers)
    signature = request.headers.get("x-hub-signature-256")
    for channel in channels.values():
        if not whatsapp.signature_matches(body, signature, channel.app_secret):
            count_ingested("webhook", "unauthorized")
            return _error(401, "missing or invalid X-Hub-Signature-256")
    if batch.implausible and channels:  # signed: worth a line in the log
        count_ingested("webhook", "implausible_time", batch.implausible)
        log.warning(
            "webhook: %d message(s) or status(es) dated before 1970 or more than a day ahead: "
            "not stored",
            batch.implausible,
        )
    unknown = batch.numbers - set(channels)
    if unknown:
        log.warning("webhook for unknown phone_number_id(s) %s: not stored", sorted(unknown))
    if not channels:
        count_ingested("webhook", "unknown_number")
        return JSONResponse({"messages": 0, "duplicates": 0, "statuses": 0})

    async def work(session: AsyncSession) -> whatsapp.Outcome:
        return await whatsapp.store(session, batch, channels)

    items = batch.items
    try:
        accounts = {channel.account_id for channel in channels.values()}
        outcome = await store(
            request, work, items, accounts, bulk=(whatsapp.store_many, (batch, channels))
        )
    except WriterBusy as error:
        return busy(error)
    count_ingested("webhook", "stored", outcome.messages)
    count_ingested("webhook", "duplicate", outcome.duplicates)
    count_ingested("webhook", "status", outcome.statuses)
    count_ingested("webhook", "change", outcome.changes)
    return JSONResponse(
        {
            "messages": outcome.messages,
            "duplicates": outcome.duplicates,
            "statuses": outcome.statuses,
        }
    )


routes = [
    Route("/webhooks/whatsapp", verify, methods=["GET"]),
    Route("/webhooks/whatsapp", receive, methods=["POST"]),
]
