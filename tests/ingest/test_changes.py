"""Edits and revokes of messages (issue 19), in Meta's documented payloads: never messages of
their own; the original is marked, still counted once; one that arrives before its original
waits for it; on the path of one request at a time and on the group commit's bulk path. Other
webhook fields are answered 200, stored nowhere and counted by field in /metrics."""

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from models import Message, PendingChange
from tests.conftest import TestAccount, create_test_account, graphql, make_settings
from tests.ingest.support import (
    add_channel,
    change,
    conversations,
    count_rows,
    inbound,
    post_webhook,
    rows,
    wait_for_depth,
    writer_of,
)
from tests.ingest.test_group_commit import metric
from tests.service.test_ops import serving

T = 1_780_000_000  # 2026-05-28 20:26:40 UTC
ANA = "33612345678"


def other_field(field: str) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": field, "value": {"x": 1}}]}],
    }


DETAILS = """query($f: ReportFilter!) { conversationDetails(filter: $f) { edges { node {
  messageCount editedMessages deletedMessages } } } }"""
DAY = {"from": "2026-05-28", "to": "2026-05-28", "timezone": "UTC"}


async def details(client: httpx.AsyncClient, account: TestAccount) -> list[dict[str, Any]]:
    body = await graphql(client, account, DETAILS, {"f": DAY})
    return [edge["node"] for edge in body["data"]["conversationDetails"]["edges"]]


async def messages_of(client: httpx.AsyncClient, account: TestAccount) -> int:
    query = "query($f: ReportFilter!) { summaryReport(filter: $f) { totals { messages } } }"
    body = await graphql(client, account, query, {"f": DAY})
    return body["data"]["summaryReport"]["totals"]["messages"]  # type: ignore[no-any-return]


async def test_an_edit_and_a_revoke_change_no_count(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    for payload in (
        inbound("w-a", ANA, T),
        change("edit", "w-a-edit", "w-a", T + 60),
        inbound("w-b", ANA, T + 120),
        change("revoke", "w-b-revoke", "w-b", T + 180),
        change("edit", "w-a-edit", "w-a", T + 60),  # redelivered
        change("edit", "w-a-edit-2", "w-a", T + 240),  # edited again: still one edited message
    ):
        assert (await post_webhook(client, payload)).status_code == 200
    stored = {row.wamid: (row.edited_at, row.deleted_at) for row in await rows(engine, Message)}
    assert stored == {"w-a": (T + 60, None), "w-b": (None, T + 180)}
    assert await details(client, account) == [
        {"messageCount": 2, "editedMessages": 1, "deletedMessages": 1}
    ]
    assert await messages_of(client, account) == 2
    assert len(await conversations(engine)) == 1


async def test_a_revoke_before_its_original_waits_for_it(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    response = await post_webhook(client, change("revoke", "w-r", "w-late", T + 30))
    assert response.status_code == 200
    counts = await count_rows(engine)
    assert (counts["message"], counts["conversation"], counts["contact"]) == (0, 0, 0)
    [waiting] = await rows(engine, PendingChange)
    assert (waiting.wamid, waiting.kind, waiting.at) == ("w-late", "deleted", T + 30)
    assert (await post_webhook(client, inbound("w-late", ANA, T))).status_code == 200
    [message] = await rows(engine, Message)
    assert (message.wamid, message.deleted_at) == ("w-late", T + 30)
    assert await rows(engine, PendingChange) == []
    assert await details(client, account) == [
        {"messageCount": 1, "editedMessages": 0, "deletedMessages": 1}
    ]


async def test_edits_and_revokes_in_one_group_transaction(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """The bulk path: an edit after its original in the same transaction, a revoke before its
    original, and a revoke whose original never comes (it waits)."""
    await add_channel(engine, account.id)
    writer = writer_of(app)
    deliveries = [
        inbound("g-1", ANA, T),
        change("edit", "g-1-edit", "g-1", T + 10),
        change("revoke", "g-2-revoke", "g-2", T + 20),
        inbound("g-2", ANA, T + 5),
        change("revoke", "g-3-revoke", "g-3", T + 30),
    ]
    async with writer.held():
        posts = []
        for number, payload in enumerate(deliveries, start=1):
            posts.append(asyncio.create_task(post_webhook(client, payload)))
            await wait_for_depth(writer, number)  # queued in this order
    assert [answer.status_code for answer in await asyncio.gather(*posts)] == [200] * 5
    stored = {row.wamid: (row.edited_at, row.deleted_at) for row in await rows(engine, Message)}
    assert stored == {"g-1": (T + 10, None), "g-2": (None, T + 20)}
    assert [row.wamid for row in await rows(engine, PendingChange)] == ["g-3"]
    assert await details(client, account) == [
        {"messageCount": 2, "editedMessages": 1, "deletedMessages": 1}
    ]


async def test_other_fields_are_answered_and_counted_by_field(database_url: str) -> None:
    async with serving(make_settings(database_url, metrics="open")) as (app, http):
        account = await create_test_account(app.state.engine)
        await add_channel(app.state.engine, account.id)
        for field in ("calls", "user_preferences", "calls", "no_such_field"):
            response = await post_webhook(http, other_field(field))
            assert response.status_code == 200
        mixed = inbound("w-m", ANA, T)
        mixed["entry"][0]["changes"].append(
            {"field": "message_template_status_update", "value": {}}
        )
        assert (await post_webhook(http, json.dumps(mixed).encode())).status_code == 200
        assert (await count_rows(app.state.engine))["message"] == 1
        scraped = (await http.get("/metrics")).text
    name = "wareports_webhook_fields_ignored_total"
    assert metric(scraped, f'{name}{{field="calls"}}') == 2
    assert metric(scraped, f'{name}{{field="user_preferences"}}') == 1
    assert metric(scraped, f'{name}{{field="other"}}') == 1
    assert metric(scraped, f'{name}{{field="message_template_status_update"}}') == 1
