"""The WhatsApp webhook: handshake, signatures, limits, every real payload, statuses, duplicates."""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from models import Contact, Conversation, PendingStatus
from tests.conftest import TestAccount, make_settings
from tests.ingest.support import (
    APP_SECRET,
    PNID,
    VERIFY_TOKEN,
    add_channel,
    conversations,
    count_rows,
    inbound,
    messages,
    post_events,
    post_webhook,
    rows,
    sign,
    status_payload,
)

FIXTURES = Path("/work/shared/fixtures/whatsapp")
DAY = 86400
NOTHING = {
    "contact": 0,
    "contact_tag": 0,
    "conversation": 0,
    "conversation_tag": 0,
    "message": 0,
    "pending_status": 0,
    "ingested_event": 0,
    "widget_click": 0,
}


@dataclass(frozen=True)
class Stored:
    """The one inbound message (and contact) a fixture must leave."""

    wamid: str
    type: str
    body: str | None
    sent_at: int
    name: str | None = "Test Name"


@dataclass(frozen=True)
class Pending:
    """The pending status a fixture must leave (its message is unknown in a fresh account)."""

    status: str
    at: int
    error_code: int | None = None
    error_title: str | None = None


# Written out by hand from the payload files.
EXPECTED: dict[str, Stored | Pending | None] = {
    "account_update__account_deleted": None,
    "account_update__pricing_tiering_update": None,
    "callback_button__button": Stored("wamid.xyzxyz", "interactive", "title", 1698266730),
    "callback_button__quick_reply": Stored("wamid.xsidjw", "button", "title", 1698269027),
    "callback_button__quick_reply_without_context": Stored(
        "wamid.xsidjx", "button", "title", 1698269027
    ),
    "callback_selection__callback": Stored("wamid.zyzxyz", "interactive", "title", 1698266905),
    "callback_selection__description": Stored("wamid.zyzxyz", "interactive", "title", 1698266905),
    "message__animated_sticker": Stored("wamid.xyzxyz", "sticker", None, 1697043785),
    "message__audio": Stored("wamid.xyzxyz", "audio", None, 1697043509),
    "message__chosen_location": Stored("wamid.xyzxyz", "location", "Facebook HQ", 1697044557),
    "message__contacts": Stored(
        "wamid.xyzxyz", "contacts", "Chandler Bing, Monica, Rachel Green", 1697044621
    ),
    "message__current_location": Stored("wamid.xyzxyz", "location", None, 1697044557),
    "message__document": Stored("wamid.xyzxyz", "document", "caption", 1697043666),
    "message__forwarded": Stored("wamid.xyzxyz", "text", "forwarded text", 1697044815),
    "message__forwarded_many_times": Stored(
        "wamid.xyzxyz", "text", "text forwarded many times", 1697044968
    ),
    "message__image": Stored("wamid.xyzxyz", "image", None, 1697043379),
    "message__interactive_message_with_err": Stored(
        "wamid.wegrchytvwcggt=", "interactive", None, 1700505494
    ),
    "message__media_with_url": Stored("wamid.xyzxyz", "image", None, 1697043379),
    "message__order": Stored("wamid.xyzxyz", "order", None, 1697044668),
    "message__reaction": Stored("wamid.xyzxyz", "reaction", "\U0001f62e", 1697044456),
    "message__referral": Stored("wamid.ID", "text", "BODY", 1697045000),
    "message__reply": Stored("wamid.xyzxyz", "text", "replied text", 1697044746),
    "message__static_sticker": Stored("wamid.xyzxyz", "sticker", None, 1697043760),
    "message__text": Stored("wamid.xyzxyz", "text", "Body Text", 1697043223),
    "message__unreaction_empty": Stored("wamid.xyzxyz", "reaction", None, 1697044456),
    "message__unreaction_no_emoji": Stored("wamid.xyzxyz", "reaction", None, 1697044456),
    "message__unsupported": Stored("wamid.xyzxyz", "unsupported", None, 1697044706),
    "message__unsupported_with_type": Stored("wamid.xyzxyz", "unsupported", None, 1697044706),
    "message__video": Stored("wamid.xyzxyz", "video", "caption", 1697044362),
    "message__voice": Stored("wamid.xyzxyz", "voice", None, 1697043473),
    "message_status__delivered": Pending("delivered", 1698266945),
    "message_status__failed": Pending(
        "failed", 1689380458, 130472, "User's number is part of an experiment"
    ),
    "message_status__group": None,  # names "<BUSINESS_PHONE_NUMBER_ID>", not a number we know
    "message_status__played": Pending("played", 1689380458),
    "message_status__read": Pending("read", 1689380458),
    "message_status__sent": Pending("sent", 1698266945),
    "message_status__with_tracker": Pending("sent", 1698266945),
    "system__identity_change": Stored(
        "wamid.xyzxyz", "system", "User identity changed", 1697044706, name="User A"
    ),
    "system__phone_number_change": Stored(
        "wamid.xyzxyz==",
        "system",
        "User A changed from 972987654321 to 972912345678",
        1753851315,
        name=None,
    ),
}


@pytest.fixture
async def channel(engine: AsyncEngine, account: TestAccount) -> int:
    return await add_channel(engine, account.id)


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(path.stem for path in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_fixture_is_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int, name: str
) -> None:
    response = await post_webhook(client, (FIXTURES / f"{name}.json").read_bytes())
    assert response.status_code == 200, response.text
    expected = EXPECTED[name]
    counts = await count_rows(engine)
    if expected is None:
        assert counts == NOTHING
    elif isinstance(expected, Pending):
        assert counts == NOTHING | {"pending_status": 1}
        [pending] = await rows(engine, PendingStatus)
        assert (pending.wamid, pending.status, pending.at) == (
            "wamid.xyzxyz",
            expected.status,
            expected.at,
        )
        assert (pending.error_code, pending.error_title) == (
            expected.error_code,
            expected.error_title,
        )
    else:
        await _assert_one_inbound_message(engine, channel, expected)
        assert counts == NOTHING | {"contact": 1, "conversation": 1, "message": 1}


async def _assert_one_inbound_message(engine: AsyncEngine, channel: int, expected: Stored) -> None:
    [contact] = await rows(engine, Contact)
    assert (contact.phone, contact.wa_id, contact.name) == (
        "+972987654321",
        "972987654321",
        expected.name,
    )
    [message] = await messages(engine)
    assert (message.wamid, message.type, message.body, message.sent_at) == (
        expected.wamid,
        expected.type,
        expected.body,
        expected.sent_at,
    )
    assert (message.direction, message.sender, message.agent_id, message.status) == (
        "INBOUND",
        "contact",
        None,
        None,
    )
    [conversation] = await conversations(engine)
    t = expected.sent_at
    assert conversation.contact_id == contact.id
    assert conversation.channel_id == channel
    assert message.conversation_id == conversation.id
    # Long past: closed automatically one delay (24 h) after its only message.
    assert _figures(conversation) == {
        "source": "INBOUND",
        "direction": "INBOUND",
        "status": "CLOSED",
        "started_at": t,
        "first_inbound_at": t,
        "first_response_at": None,
        "last_message_at": t,
        "closed_at": t + DAY,
        "auto_closed": True,
        "closed_by_id": None,
        "message_count": 1,
        "inbound_count": 1,
        "outbound_count": 0,
        "assignee_id": None,
    }


def _figures(conversation: Conversation) -> dict[str, Any]:
    names = (
        "source direction status started_at first_inbound_at first_response_at last_message_at "
        "closed_at auto_closed closed_by_id message_count inbound_count outbound_count assignee_id"
    )
    return {name: getattr(conversation, name) for name in names.split()}


async def test_referral_is_kept_on_the_conversation(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    response = await post_webhook(client, (FIXTURES / "message__referral.json").read_bytes())
    assert response.status_code == 200
    [conversation] = await conversations(engine)
    assert (
        conversation.referral_source_url,
        conversation.referral_source_id,
        conversation.referral_source_type,
        conversation.referral_headline,
    ) == ("AD_OR_POST_FB_URL", "ADID", "ad or post", "AD_TITLE")


# --- handshake


async def test_handshake_echoes_the_challenge(client: httpx.AsyncClient, channel: int) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = await client.get("/webhooks/whatsapp", params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN.upper(), "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "a\x00b", "hub.challenge": "1"},
        {},
    ],
)
async def test_handshake_with_a_wrong_token_is_403(
    client: httpx.AsyncClient, channel: int, params: dict[str, str]
) -> None:
    response = await client.get("/webhooks/whatsapp", params=params)
    assert response.status_code == 403
    assert "1" not in response.text


# --- refused deliveries store nothing


async def test_unsigned_delivery_is_401(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    body = json.dumps(inbound("wamid.1", "33612345678", 1_700_000_000)).encode()
    response = await client.post("/webhooks/whatsapp", content=body)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["errors"][0]["message"]
    assert await count_rows(engine) == NOTHING


@pytest.mark.parametrize("tamper", ["body", "secret", "prefix", "truncated"])
async def test_tampered_delivery_is_401(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int, tamper: str
) -> None:
    body = json.dumps(inbound("wamid.1", "33612345678", 1_700_000_000, "hi")).encode()
    signature = sign(body)
    if tamper == "body":
        body = body.replace(b'"hi"', b'"ho"')
    elif tamper == "secret":
        signature = sign(body, "another-secret")
    elif tamper == "prefix":
        signature = signature.replace("sha256=", "sha1=")
    else:
        signature = signature[:-2]
    response = await client.post(
        "/webhooks/whatsapp", content=body, headers={"X-Hub-Signature-256": signature}
    )
    assert response.status_code == 401
    assert await count_rows(engine) == NOTHING


async def test_oversized_delivery_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    payload = inbound("wamid.1", "33612345678", 1_700_000_000, "x" * (1024 * 1024))
    response = await post_webhook(client, payload)
    assert response.status_code == 413
    assert await count_rows(engine) == NOTHING


async def test_oversized_chunked_delivery_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b" " * 65536

    response = await client.post("/webhooks/whatsapp", content=chunks())
    assert response.status_code == 413
    assert await count_rows(engine) == NOTHING


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"entry": [', "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b'{"entry": [' + b"7" * 4301 + b"]}", "body is not JSON"),  # past Python's int limit
        (b"[]", "not a WhatsApp webhook payload"),
        (b'{"object": "whatsapp_business_account"}', "entry: Field required"),
        (
            json.dumps(
                {"entry": [{"changes": [{"field": "messages", "value": {"messages": []}}]}]}
            ).encode(),
            "metadata: Field required",
        ),
    ],
)
async def test_malformed_delivery_is_400(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int, body: bytes, reason: str
) -> None:
    response = await post_webhook(client, body)
    assert response.status_code == 400
    assert reason in response.json()["errors"][0]["message"]
    assert await count_rows(engine) == NOTHING


async def test_message_without_sender_digits_is_400(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    payload = inbound("wamid.1", "33612345678", 1_700_000_000)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "<script>"
    response = await post_webhook(client, payload)
    assert response.status_code == 400
    assert "from" in response.json()["errors"][0]["message"]
    assert await count_rows(engine) == NOTHING


async def test_unknown_number_is_200_and_not_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    payload = inbound("wamid.1", "33612345678", 1_700_000_000, phone_number_id="999")
    response = await post_webhook(client, payload, secret="whatever")
    assert response.status_code == 200
    assert await count_rows(engine) == NOTHING


# --- duplicates and joining


async def test_redelivered_message_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    t = int(time.time()) - 600
    first = await post_webhook(client, inbound("wamid.1", "33612345678", t, "hello"))
    assert first.json() == {"messages": 1, "duplicates": 0, "statuses": 0}
    before = [_figures(row) for row in await conversations(engine)]
    again = await post_webhook(client, inbound("wamid.1", "33612345678", t + 5, "edited"))
    assert again.status_code == 200
    assert again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
    assert [_figures(row) for row in await conversations(engine)] == before
    [message] = await messages(engine)
    assert (message.body, message.sent_at) == ("hello", t)


async def test_messages_join_the_open_conversation(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    t = int(time.time()) - 3600
    for index, offset in enumerate((0, 60, 7200)):
        response = await post_webhook(client, inbound(f"wamid.{index}", "33612345678", t + offset))
        assert response.status_code == 200
    [conversation] = await conversations(engine)
    assert _figures(conversation) | {"closed_by_id": None} == {
        "source": "INBOUND",
        "direction": "INBOUND",
        "status": "OPEN",
        "started_at": t,
        "first_inbound_at": t,
        "first_response_at": None,
        "last_message_at": t + 7200,
        "closed_at": None,
        "auto_closed": False,
        "closed_by_id": None,
        "message_count": 3,
        "inbound_count": 3,
        "outbound_count": 0,
        "assignee_id": None,
    }


async def test_contact_name_follows_the_profile(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    t = int(time.time()) - 600
    await post_webhook(client, inbound("wamid.1", "33612345678", t, name="Ana"))
    await post_webhook(client, inbound("wamid.2", "33612345678", t + 1, name="Ana Lopez"))
    [contact] = await rows(engine, Contact)
    assert (contact.phone, contact.name) == ("+33612345678", "Ana Lopez")


async def test_nul_characters_are_removed_not_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    # Meta's escape for U+0000 in a name, a body and an id: the message is stored without it
    # (PostgreSQL text cannot hold it), rather than refused and retried by Meta forever.
    t = int(time.time()) - 600
    payload = inbound("wamid.\x00nul", "33612345678", t, text="hi\x00", name="A\x00na")
    response = await post_webhook(client, payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"messages": 1, "duplicates": 0, "statuses": 0}
    [contact] = await rows(engine, Contact)
    assert contact.name == "Ana"
    [message] = await messages(engine)
    assert (message.wamid, message.body) == ("wamid.nul", "hi")


# --- statuses


async def test_statuses_move_forward_only(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    t = int(time.time()) - 600
    sent = {
        "id": "e1",
        "type": "message.sent",
        "at": t,
        "phone": "+33612345678",
        "messageId": "wamid.out",
        "agentEmail": "ana@example.com",
    }
    assert (await post_events(client, account, [sent])).status_code == 200
    for status, at, expected in [
        ("delivered", t + 1, ("delivered", t + 1)),
        ("read", t + 3, ("read", t + 3)),
        ("delivered", t + 2, ("read", t + 3)),  # late and backwards: ignored
        ("sent", t + 4, ("read", t + 3)),
        ("played", t + 5, ("played", t + 5)),
    ]:
        response = await post_webhook(client, status_payload("wamid.out", status, at))
        assert response.status_code == 200
        [message] = await messages(engine)
        assert (message.status, message.status_at) == expected
    failure = {"errors": [{"code": 131047, "title": "Re-engagement message"}]}
    await post_webhook(client, status_payload("wamid.out", "failed", t + 6, **failure))
    await post_webhook(client, status_payload("wamid.out", "read", t + 7))
    [message] = await messages(engine)
    assert (message.status, message.status_at, message.error_code, message.error_title) == (
        "failed",
        t + 6,
        131047,
        "Re-engagement message",
    )
    assert (await count_rows(engine))["pending_status"] == 0


async def test_status_before_its_message_is_applied_when_it_is_recorded(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    t = int(time.time()) - 600
    await post_webhook(client, status_payload("wamid.out", "delivered", t + 2))
    await post_webhook(client, status_payload("wamid.out", "read", t + 9))
    assert (await count_rows(engine))["pending_status"] == 2
    sent = {
        "id": "e1",
        "type": "message.sent",
        "at": t,
        "phone": "+33612345678",
        "messageId": "wamid.out",
    }
    assert (await post_events(client, account, [sent])).status_code == 200
    [message] = await messages(engine)
    assert (message.status, message.status_at, message.sender) == ("read", t + 9, "automation")
    assert (await count_rows(engine))["pending_status"] == 0


async def test_status_of_an_inbound_message_is_ignored(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int
) -> None:
    t = int(time.time()) - 600
    await post_webhook(client, inbound("wamid.in", "33612345678", t))
    response = await post_webhook(client, status_payload("wamid.in", "read", t + 1))
    assert response.status_code == 200
    [message] = await messages(engine)
    assert message.status is None
    assert (await count_rows(engine))["pending_status"] == 0


async def test_webhooks_route_to_the_account_of_the_number(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    from tests.conftest import create_test_account

    other = await create_test_account(engine, "Other")
    await add_channel(engine, other.id, "5550001", "other-secret", "other-verify")
    t = int(time.time()) - 600
    refused = await post_webhook(
        client, inbound("wamid.9", "33612345678", t, phone_number_id="5550001"), APP_SECRET
    )
    assert refused.status_code == 401
    accepted = await post_webhook(
        client, inbound("wamid.9", "33612345678", t, phone_number_id="5550001"), "other-secret"
    )
    assert accepted.status_code == 200
    [message] = await messages(engine)
    assert message.account_id == other.id
    assert PNID != "5550001"


@pytest.mark.parametrize("header", [b"sha256=\xe9\xe9", "sha256=é".encode(), b"\xff"])
async def test_a_signature_header_with_any_bytes_is_401(
    client: httpx.AsyncClient, engine: AsyncEngine, channel: int, header: bytes
) -> None:
    body = json.dumps(inbound("wamid.sig", "33612345678", 1_700_000_000)).encode()
    response = await client.post(
        "/webhooks/whatsapp",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": header},
    )
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["errors"][0]["message"]
    assert await count_rows(engine) == NOTHING


async def test_an_error_code_no_integer_column_holds_is_not_kept_and_the_status_is(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    t = int(time.time()) - 600
    sent = {"id": "e1", "type": "message.sent", "at": t, "phone": "+33612345678"}
    sent |= {"messageId": "wamid.big", "agentEmail": "ana@example.com"}
    assert (await post_events(client, account, [sent])).status_code == 200
    for code in (2**31, 10**30):
        failure = {"errors": [{"code": code, "title": "Something odd"}]}
        response = await post_webhook(
            client, status_payload("wamid.big", "failed", t + 6, **failure)
        )
        assert response.status_code == 200, response.text
        [message] = await messages(engine)
        assert (message.status, message.error_code, message.error_title) == (
            "failed",
            None,
            "Something odd",
        )


async def test_messages_and_statuses_dated_before_1970_or_a_day_ahead_are_skipped(
    database_url: str, engine: AsyncEngine, channel: int
) -> None:
    """Answered 200 (Meta would retry a refused delivery for days), counted, never stored:
    year 36812 broke every date of the conversation afterwards."""
    now = int(time.time())
    line = 'wareports_ingested_total{kind="webhook",outcome="implausible_time"} '
    payload = inbound("wamid.ok", "33612345678", now - 60)
    value = payload["entry"][0]["changes"][0]["value"]
    for wamid, timestamp in (("wamid.far", 1099511627775), ("wamid.old", -5)):
        value["messages"].append({**value["messages"][0], "id": wamid, "timestamp": timestamp})
    late = status_payload("wamid.ok", "read", now + 3 * 86400)
    value["statuses"] = late["entry"][0]["changes"][0]["value"]["statuses"]
    application = create_app(make_settings(database_url, metrics="open"))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await post_webhook(http, payload)
            assert response.status_code == 200, response.text
            assert response.json() == {"messages": 1, "duplicates": 0, "statuses": 0}
            scraped = (await http.get("/metrics")).text.splitlines()
            assert [row.removeprefix(line) for row in scraped if row.startswith(line)] == ["3.0"]
            # A sender's clock a little ahead (up to a day) is taken as it is.
            response = await post_webhook(http, inbound("wamid.soon", "33612345678", now + 3600))
            assert response.json() == {"messages": 1, "duplicates": 0, "statuses": 0}
    stored = {row.wamid: (row.sent_at, row.status) for row in await messages(engine)}
    assert stored == {"wamid.ok": (now - 60, None), "wamid.soon": (now + 3600, None)}
