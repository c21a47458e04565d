"""Shared helpers of the ingestion tests: channels, signed webhooks, event batches, row dumps."""

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, select
from starlette.applications import Starlette

from api import accounts
from ingest.writer import GroupWriter
from models import (
    Contact,
    ContactTag,
    Conversation,
    ConversationTag,
    IngestedEvent,
    Message,
    PendingStatus,
    WidgetClick,
)
from models.db import session_factory, transaction
from tests.conftest import TestAccount

PNID = "1122334455667"
ANA = "33612345678"  # a contact's wa_id
DISPLAY_NUMBER = "+972123456789"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
INGEST_TABLES: tuple[type[SQLModel], ...] = (
    Contact,
    ContactTag,
    Conversation,
    ConversationTag,
    Message,
    PendingStatus,
    IngestedEvent,
    WidgetClick,
)
NOTHING_STORED = {table.__tablename__: 0 for table in INGEST_TABLES}  # type: ignore[misc]
# Conversation columns compared between two runs (ids differ between databases).
FIGURES = (
    "source",
    "source_explicit",
    "direction",
    "status",
    "started_at",
    "first_inbound_at",
    "first_response_at",
    "last_message_at",
    "closed_at",
    "auto_closed",
    "message_count",
    "inbound_count",
    "outbound_count",
    "rating",
    "rated_at",
)


async def add_channel(
    engine: AsyncEngine,
    account_id: int,
    phone_number_id: str = PNID,
    app_secret: str = APP_SECRET,
    verify_token: str = VERIFY_TOKEN,
) -> int:
    async with transaction(engine) as session:
        channel = await accounts.add_channel(
            session, account_id, phone_number_id, DISPLAY_NUMBER, app_secret, verify_token
        )
        assert channel.id is not None
        return channel.id


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_webhook(
    client: httpx.AsyncClient, payload: dict[str, Any] | bytes, secret: str = APP_SECRET
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post(
        "/webhooks/whatsapp",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
    )


def inbound(
    wamid: str,
    wa_id: str,
    timestamp: int,
    text: str = "hello",
    name: str | None = "Ana",
    phone_number_id: str = PNID,
) -> dict[str, Any]:
    """A webhook payload carrying one inbound text message, in Meta's format."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "972123456789", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}] if name else [],
        "messages": [
            {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(timestamp),
                "type": "text",
                "text": {"body": text},
            }
        ],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value, "field": "messages"}]}],
    }


def status_payload(
    wamid: str, status: str, timestamp: int, *, phone_number_id: str = PNID, **extra: Any
) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "972123456789", "phone_number_id": phone_number_id},
        "statuses": [
            {
                "id": wamid,
                "status": status,
                "timestamp": str(timestamp),
                "recipient_id": "33612345678",
                **extra,
            }
        ],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value, "field": "messages"}]}],
    }


async def post_events(
    client: httpx.AsyncClient, who: TestAccount, events: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post("/v1/events", json={"events": events}, headers=who.headers)


async def count_rows(engine: AsyncEngine) -> dict[str, int]:
    """How many rows each ingestion table holds."""
    async with session_factory(engine)() as session:
        return {
            table.__tablename__: await session.scalar(select(func.count()).select_from(table))  # type: ignore[misc]
            for table in INGEST_TABLES
        }


async def rows(
    engine: AsyncEngine, table: type[SQLModel], *order: Any, account_id: int | None = None
) -> list[Any]:
    query = select(table).order_by(*order)
    if account_id is not None:
        query = query.where(table.account_id == account_id)  # type: ignore[attr-defined]
    async with session_factory(engine)() as session:
        return list((await session.scalars(query)).all())


async def conversations(engine: AsyncEngine, account_id: int | None = None) -> list[Conversation]:
    return await rows(
        engine, Conversation, Conversation.started_at, Conversation.id, account_id=account_id
    )


async def messages(engine: AsyncEngine) -> list[Message]:
    return await rows(engine, Message, Message.sent_at, Message.wamid)


def figures(conversation: Conversation) -> dict[str, Any]:
    return {name: getattr(conversation, name) for name in FIGURES}


def change(kind: str, wamid: str, original: str, at: int, sender: str = ANA) -> dict[str, Any]:
    """An inbound `edit` or `revoke`, as Meta's messages webhook reference shows them."""
    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": str(at), "type": kind}
    if kind == "edit":
        message["edit"] = {
            "original_message_id": original,
            "message": {"type": "text", "text": {"body": "hello, edited"}},
        }
    else:
        message["revoke"] = {"original_message_id": original}
    payload = inbound(wamid, sender, at)
    payload["entry"][0]["changes"][0]["value"]["messages"] = [message]
    return payload


def echoes(*echoed: dict[str, Any]) -> dict[str, Any]:
    """An `smb_message_echoes` delivery, as Meta's reference shows it."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_NUMBER[1:],
                                "phone_number_id": PNID,
                            },
                            "message_echoes": list(echoed),
                        },
                        "field": "smb_message_echoes",
                    }
                ],
            }
        ],
    }


def text_echo(
    wamid: str, at: int, body: str = "Hi! How can we help?", to: str = ANA
) -> dict[str, Any]:
    """A message the business sent from the WhatsApp Business app, as an echo."""
    return {
        "from": DISPLAY_NUMBER[1:],
        "to": to,
        "id": wamid,
        "timestamp": str(at),
        "type": "text",
        "text": {"body": body},
    }


def revoke_echo(wamid: str, original: str, at: int) -> dict[str, Any]:
    echo = text_echo(wamid, at)
    del echo["text"]
    return {**echo, "type": "revoke", "revoke": {"original_message_id": original}}


def writer_of(app: Starlette) -> GroupWriter:
    return app.state.writer  # type: ignore[no-any-return]


async def wait_for_depth(writer: GroupWriter, items: int) -> None:
    """Until `items` wait in the held writer's queue (the requests reached it)."""
    for _ in range(2000):
        if writer.depth >= items:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {writer.depth} of {items} items reached the writer")
