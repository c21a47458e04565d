"""Messages the business sends from the WhatsApp Business app (`smb_message_echoes`, in Meta's
documented payload): outbound messages of the number's business-app agent, with the rules of an
agent's `message.sent` (first response, assignment, counts); redelivery changes nothing; an
echoed edit or revoke marks the original. On the path of one request at a time and in a group
transaction."""

import asyncio
import copy
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from models import Message
from tests.conftest import TestAccount, graphql
from tests.ingest.support import (
    add_channel,
    conversations,
    echoes,
    inbound,
    post_webhook,
    revoke_echo,
    rows,
    text_echo,
    wait_for_depth,
    writer_of,
)

T = 1_780_000_000  # 2026-05-28 20:26:40 UTC
ANA = "33612345678"
APP_AGENT = "business-app@972123456789"  # the test number's display digits


DAY = {"from": "2026-05-28", "to": "2026-05-28", "timezone": "UTC"}
REPORT = """query($f: ReportFilter!) {
  summaryReport(filter: $f) { totals { messages outboundMessages avgFirstResponseSeconds } }
  agentReport(filter: $f) { rows { agent { email } sentMessages metrics { conversations } } }
  conversationDetails(filter: $f) { edges { node { agent { email } deletedMessages } } } }"""


async def report(client: httpx.AsyncClient, account: TestAccount) -> dict[str, Any]:
    body = await graphql(client, account, REPORT, {"f": DAY})
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


EXPECTED = {
    "summaryReport": {
        "totals": {"messages": 2, "outboundMessages": 1, "avgFirstResponseSeconds": 300.0}
    },
    "agentReport": {
        "rows": [
            {"agent": {"email": APP_AGENT}, "sentMessages": 1, "metrics": {"conversations": 1}}
        ]
    },
}


async def test_a_team_answering_from_the_app_gets_first_responses(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    assert (await post_webhook(client, inbound("w-in", ANA, T))).status_code == 200
    answer = await post_webhook(client, echoes(text_echo("w-echo", T + 300)))
    assert answer.json() == {"messages": 1, "duplicates": 0, "statuses": 0}
    again = await post_webhook(client, echoes(text_echo("w-echo", T + 300)))
    assert again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
    found = await report(client, account)
    assert {key: found[key] for key in EXPECTED} == EXPECTED
    assert found["conversationDetails"]["edges"] == [
        {"node": {"agent": {"email": APP_AGENT}, "deletedMessages": 0}}
    ]
    [conversation] = await conversations(engine)
    assert (conversation.first_response_at, conversation.outbound_count) == (T + 300, 1)
    # The business deletes its reply for everyone from the app: marked, still counted.
    await post_webhook(client, echoes(revoke_echo("w-echo-revoke", "w-echo", T + 400)))
    found = await report(client, account)
    assert {key: found[key] for key in EXPECTED} == EXPECTED
    assert found["conversationDetails"]["edges"][0]["node"]["deletedMessages"] == 1
    deleted = {row.wamid: row.deleted_at for row in await rows(engine, Message)}
    assert deleted == {"w-in": None, "w-echo": T + 400}


async def test_echoes_in_a_group_transaction(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    writer = writer_of(app)
    deliveries = [inbound("g-in", ANA, T), echoes(text_echo("g-echo", T + 300))]
    async with writer.held():
        posts = []
        for number, payload in enumerate(copy.deepcopy(deliveries), start=1):
            posts.append(asyncio.create_task(post_webhook(client, payload)))
            await wait_for_depth(writer, number)
    assert [answer.json()["messages"] for answer in await asyncio.gather(*posts)] == [1, 1]
    found = await report(client, account)
    assert {key: found[key] for key in EXPECTED} == EXPECTED
