"""20 concurrent clients posting webhooks and events for overlapping contacts lose nothing and
duplicate nothing, on SQLite (serialized writers) and PostgreSQL (row locks, ON CONFLICT)."""

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from starlette.applications import Starlette

from models import Agent, Contact, ContactTag, Conversation, ConversationTag, Message, Tag
from models.db import create_read_engine, session_factory
from tests.conftest import TestAccount
from tests.ingest.support import add_channel, count_rows, inbound, post_events, post_webhook, rows

CLIENTS = 20
ROUNDS = 4
CONTACTS = 5
T = int(time.time()) - 3600


def wa_id(contact: int) -> str:
    return f"3361000000{contact}"


def contact_of(client: int, round_: int) -> int:
    return (client + round_) % CONTACTS


def inbound_payload(client: int, round_: int) -> dict[str, Any]:
    contact = contact_of(client, round_)
    at = T + client * 10 + round_
    return inbound(f"in-{client}-{round_}", wa_id(contact), at, name=f"Contact {contact}")


def event_batch(client: int, round_: int) -> list[dict[str, Any]]:
    phone = "+" + wa_id(contact_of(client, round_))
    at = T + client * 10 + round_ + 1
    tag = f"T{round_ % 4}" if client % 2 else f"t{round_ % 4}"  # one tag, two spellings
    return [
        {
            "id": f"ev-{client}-{round_}-m",
            "type": "message.sent",
            "at": at,
            "phone": phone,
            "messageId": f"out-{client}-{round_}",
            "agentEmail": f"Agent{(client + round_) % 3}@example.com",
        },
        {"id": f"ev-{client}-{round_}-t", "type": "conversation.tagged", "at": at, "phone": phone}
        | {"tag": tag},
        {"id": f"ev-{client}-{round_}-c", "type": "contact.tagged", "at": at, "phone": phone}
        | {"tag": "VIP" if client % 2 else "vip"},
        # Sent by every client: stored once, a duplicate for the others.
        {"id": f"shared-{round_}", "type": "contact.upserted", "at": T, "phone": phone},
    ]


async def one_client(client: int, http: httpx.AsyncClient, account: TestAccount) -> list[int]:
    statuses = []
    for round_ in range(ROUNDS):
        # Each inbound message is delivered twice, by two clients at about the same time.
        for sender in (client, (client + 1) % CLIENTS):
            response = await post_webhook(http, inbound_payload(sender, round_))
            statuses.append(response.status_code)
        response = await post_events(http, account, event_batch(client, round_))
        statuses.append(response.status_code)
    return statuses


async def test_concurrent_clients_lose_and_duplicate_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    results = await asyncio.gather(*(one_client(n, client, account) for n in range(CLIENTS)))
    assert {status for statuses in results for status in statuses} == {200}

    counts = await count_rows(engine)
    assert counts["message"] == 2 * CLIENTS * ROUNDS  # as many inbound as outbound
    assert counts["contact"] == CONTACTS
    assert counts["ingested_event"] == 3 * CLIENTS * ROUNDS + ROUNDS
    assert counts["conversation"] == CONTACTS  # every message within the delay: one each
    assert counts["contact_tag"] == CONTACTS
    assert len(await rows(engine, Agent)) == 3
    tags = await rows(engine, Tag, Tag.kind, Tag.name_key)
    assert [(tag.kind, tag.name_key) for tag in tags] == [
        ("contact", "vip"),
        ("conversation", "t0"),
        ("conversation", "t1"),
        ("conversation", "t2"),
        ("conversation", "t3"),
    ]
    # Contact c gets tag T(r % 4) from every (client, round r) with (client + r) % 5 == c:
    # with 20 clients, every contact meets every round, hence every tag.
    assert counts["conversation_tag"] == CONTACTS * 4

    await _assert_counters_match_messages(engine)
    await _assert_figures_per_contact(engine)


async def _assert_counters_match_messages(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        actual = (
            await session.execute(
                select(
                    Message.conversation_id,
                    func.count(),
                    func.count(case((col(Message.direction) == "INBOUND", 1))),
                ).group_by(Message.conversation_id)
            )
        ).all()
    kept = {
        row.id: (row.message_count, row.inbound_count) for row in await rows(engine, Conversation)
    }
    assert {conversation_id: (total, inbound) for conversation_id, total, inbound in actual} == kept
    per_contact = CLIENTS * ROUNDS // CONTACTS  # inbound messages of each contact
    assert sorted(kept.values()) == [(2 * per_contact, per_contact)] * CONTACTS


async def _assert_figures_per_contact(engine: AsyncEngine) -> None:
    phones = {contact.id: contact.phone for contact in await rows(engine, Contact)}
    for conversation in await rows(engine, Conversation):
        contact = int(phones[conversation.contact_id][-1])
        sent = [
            T + client * 10 + round_
            for client in range(CLIENTS)
            for round_ in range(ROUNDS)
            if contact_of(client, round_) == contact
        ]
        assert (conversation.started_at, conversation.first_inbound_at) == (min(sent), min(sent))
        assert conversation.first_response_at == min(sent) + 1
        assert conversation.last_message_at == max(sent) + 1
        assert (conversation.source, conversation.status) == ("INBOUND", "PENDING")
    assert len(await rows(engine, ContactTag)) == CONTACTS
    assert len(await rows(engine, ConversationTag)) == CONTACTS * 4


async def test_the_writer_connects_anew_after_losing_its_connections(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """The writer does not ping its connections before each transaction: when the database
    drops them (a restart, a failover), the transaction that finds one dead runs again on a new
    one, and the request is answered 200, not 500."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the writer's SQLite connection is a file, not a server's session")
    await add_channel(engine, account.id)
    first = await post_webhook(client, inbound("before-restart", wa_id(1), T))
    assert first.status_code == 200
    async with engine.connect() as connection:
        dropped = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert dropped >= 1  # the writer's idle connection
    second = await post_webhook(client, inbound("after-restart", wa_id(1), T + 60))
    assert second.status_code == 200, second.text
    stored = await rows(engine, Message, Message.wamid)
    assert [message.wamid for message in stored] == ["after-restart", "before-restart"]


async def test_the_writer_plans_its_statements_once(
    app: Starlette, engine: AsyncEngine, account: TestAccount
) -> None:
    """The writer's connections keep generic plans of its prepared statements (planned once,
    not at each execution); the request connections (reports, with new values each time)
    plan each execution with its values, as does a read replica's engine."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no plan cache to set")
    async with app.state.writer.engine.connect() as connection:
        assert await connection.scalar(text("SHOW plan_cache_mode")) == "force_generic_plan"
    async with engine.connect() as connection:
        assert await connection.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    replica = create_read_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        async with replica.connect() as connection:
            assert await connection.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
            assert await connection.scalar(text("SHOW default_transaction_read_only")) == "on"
    finally:
        await replica.dispose()
