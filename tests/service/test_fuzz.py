"""Property-based fuzzing through the live ASGI app: valid operations generated from the schema
(hypothesis-graphql) never get a 500 or an unexpected error and never show the other account's
data; malformed bodies, content types and headers always get an answer below 500."""

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from sqlalchemy.ext.asyncio import AsyncEngine

from schema import schema
from tests.conftest import TestAccount, create_test_account
from tests.factories import at, automation, building, inbound, reply
from tests.ingest.support import PNID, add_channel, count_rows, post_webhook
from tests.schema_walk import strings_in

# Every run is bounded: a few dozen examples per property, no deadline (first requests warm
# the pool), fixtures built once per test function rather than per example.
BOUNDED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Codes a valid operation may get: bad values of arguments, or too costly a selection.
VALID_OPERATION_CODES = {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX"}
LEAK_MARKERS = ("Leaky", "leak@b-only.test", "+19995550100", "LeakTag", "leak-button")
# Dates and ids near the seeded rows, so that generated operations reach data, and ids of both
# accounts, so that the other account's ids are tried.
CUSTOM_SCALARS = {
    "Date": st.dates(date(2025, 12, 20), date(2026, 1, 20)).map(nodes.String),
    "ID": st.one_of(st.integers(1, 12).map(nodes.String), st.text(max_size=8).map(nodes.String)),
}


@dataclass(frozen=True)
class Fuzzed:
    """The caller's token and the ids of its rows; the other account's every string carries a
    leak marker."""

    caller: TestAccount
    own_ids: set[str]


async def seed_pair(engine: AsyncEngine) -> Fuzzed:
    caller = await create_test_account(engine, name="Caller", timezone="Europe/Paris")
    other = await create_test_account(engine, name="Other")
    own: list[Any] = []
    async with building(engine, other.id) as make:
        agent = await make.agent("leak@b-only.test", "Leaky Agent")
        contact = await make.contact("+19995550100", "Leaky Contact", tags=["LeakTag"])
        for day in ("2025-12-31", "2026-01-02", "2026-01-05"):
            conversation = await make.conversation(
                contact,
                [inbound(at(f"{day} 10:00")), reply(at(f"{day} 10:02"), agent)],
                assignee=agent,
                tags=["LeakTag"],
            )
            button = await make.button("leak-button")
            await make.click(
                button, at(f"{day} 09:59"), utm_campaign="Leaky", conversation=conversation
            )
    async with building(engine, caller.id) as make:
        zoe = await make.agent("zoe@a.test", "Zoe")
        lea = await make.contact("+33612345678", "Léa", tags=["VIP"])
        own += [zoe, lea, await make.tag("contact", "VIP")]
        for day in ("2025-12-31", "2026-01-01", "2026-01-03"):
            own.append(
                await make.conversation(
                    lea,
                    [automation(at(f"{day} 08:00")), inbound(at(f"{day} 08:05"))],
                    assignee=zoe,
                    tags=["Sales"],
                    closed_at=at(f"{day} 09:00"),
                    closed_by=zoe,
                )
            )
        own.append(await make.tag("conversation", "Sales"))
    return Fuzzed(caller, {str(row.id) for row in own})


@pytest.fixture
async def fuzzed(engine: AsyncEngine) -> Fuzzed:
    return await seed_pair(engine)


def ids_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {str(value["id"])} if value.get("id") is not None else set()
        return found.union(*(ids_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(ids_in(item) for item in value))
    return set()


def assert_no_leak(answer: Any, fuzzed: Fuzzed) -> None:
    text = " ".join(strings_in(answer))
    assert not [marker for marker in LEAK_MARKERS if marker in text], answer
    assert ids_in(answer) <= fuzzed.own_ids, answer


async def post(client: httpx.AsyncClient, fuzzed: Fuzzed, query: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers=fuzzed.caller.headers)


@BOUNDED
@given(query=from_schema(schema._schema, custom_scalars=CUSTOM_SCALARS))
async def test_valid_operations_never_fail_nor_leak(
    client: httpx.AsyncClient, fuzzed: Fuzzed, query: str
) -> None:
    response = await post(client, fuzzed, query)
    assert response.status_code == 200, (query, response.text)
    body = response.json()
    codes = {error["extensions"]["code"] for error in body.get("errors", [])}
    assert codes <= VALID_OPERATION_CODES, (query, body)
    assert_no_leak(body, fuzzed)
    export = (body.get("data") or {}).get("exportReportCsv")
    if export and "url" in export:  # the CSV behind the link is the caller's too
        download = await client.get(export["url"])
        assert download.status_code == 200
        assert not [marker for marker in LEAK_MARKERS if marker in download.text]


@BOUNDED
@given(query=from_schema(schema._schema, custom_scalars=CUSTOM_SCALARS, mode=Mode.NEGATIVE))
async def test_invalid_operations_get_coded_errors(
    client: httpx.AsyncClient, fuzzed: Fuzzed, query: str
) -> None:
    response = await post(client, fuzzed, query)
    assert response.status_code < 500, (query, response.text)
    if response.status_code == 200:
        body = response.json()
        assert body["errors"], (query, body)
        codes = {error["extensions"]["code"] for error in body["errors"]}
        assert "INTERNAL_SERVER_ERROR" not in codes, (query, body)
        assert_no_leak(body.get("data"), fuzzed)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
OPERATION_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "query": st.one_of(JSON_VALUES, st.just("{ agents { id } }")),
        "variables": JSON_VALUES,
        "operationName": JSON_VALUES,
        "extensions": JSON_VALUES,
    },
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    OPERATION_LIKE.map(lambda value: json.dumps(value).encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "application/graphql",
            "multipart/form-data; boundary=xyz",
            "application/x-www-form-urlencoded",
            "",
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200)
PATHS = ["/graphql", "/v1/events", "/webhooks/whatsapp"]


@BOUNDED
@given(body=BODIES, content_type=CONTENT_TYPES, path=st.sampled_from(PATHS))
async def test_malformed_bodies_never_get_a_500(
    client: httpx.AsyncClient, fuzzed: Fuzzed, body: bytes, content_type: str, path: str
) -> None:
    headers = {**fuzzed.caller.headers, "Content-Type": content_type}
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code < 500, (path, body, content_type, response.text)


@BOUNDED
@given(
    authorization=st.one_of(HEADER_TEXT, HEADER_TEXT.map(lambda text: f"Bearer {text}")),
    extra=st.dictionaries(
        st.text(
            st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
            min_size=1,
            max_size=20,
        ),
        HEADER_TEXT,
        max_size=5,
    ),
    params=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "x"]),
        st.text(max_size=50),
        max_size=4,
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "OPTIONS"]),
    path=st.sampled_from([*PATHS, "/w/abc", "/exports/abc"]),
)
async def test_garbage_headers_and_parameters_never_get_a_500(
    client: httpx.AsyncClient,
    fuzzed: Fuzzed,
    authorization: str,
    extra: dict[str, str],
    params: dict[str, str],
    method: str,
    path: str,
) -> None:
    # Raw latin-1 bytes: what a client may really send (httpx would refuse non-ASCII text).
    headers = {
        name: value.encode("latin-1")
        for name, value in {**extra, "Authorization": authorization}.items()
    }
    response = await client.request(method, path, headers=headers, params=params)
    assert response.status_code < 500, (method, path, headers, params, response.text)


async def test_huge_headers_never_get_a_500(client: httpx.AsyncClient, fuzzed: Fuzzed) -> None:
    for headers in (
        {"Authorization": "Bearer " + "x" * 200_000},
        {"Authorization": fuzzed.caller.headers["Authorization"], "X-Junk": "y" * 200_000},
        {"Authorization": fuzzed.caller.headers["Authorization"], "Content-Length": "9" * 40},
    ):
        response = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert response.status_code < 500, response.text


# --- ingestion: shaped like what the routes take, with odd values everywhere ----------------

ODD_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 10**30, 1099511627775, -(2**63)]),
    st.floats(),
)
ODD_STRINGS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", "\x00", "²", "١٢", "\U0001d7d0\U0001d7ce", "+33612345678", "2026-02-31T00:00:00Z"]
    ),
    st.text(st.characters(codec="utf-8"), min_size=300, max_size=600),
)
ODD_VALUES = st.one_of(ODD_NUMBERS, ODD_STRINGS, st.none(), st.booleans(), JSON_VALUES)
EVENT_TYPES = [
    "agent.upserted",
    "contact.upserted",
    "contact.tagged",
    "contact.untagged",
    "conversation.started",
    "message.sent",
    "conversation.assigned",
    "conversation.tagged",
    "conversation.untagged",
    "conversation.closed",
    "conversation.rated",
]
EVENT_LIKE = st.fixed_dictionaries(
    {"id": st.one_of(st.text(min_size=1, max_size=12), ODD_VALUES)},
    optional={
        "type": st.one_of(st.sampled_from(EVENT_TYPES), ODD_VALUES),
        "at": ODD_VALUES,
        "phone": st.one_of(st.just("+33612345678"), ODD_VALUES),
        "conversationId": ODD_VALUES,
        "messageId": ODD_VALUES,
        "agentEmail": st.one_of(st.just("ana@a.test"), ODD_VALUES),
        "email": ODD_VALUES,
        "name": ODD_VALUES,
        "tag": ODD_VALUES,
        "source": st.one_of(st.sampled_from(["FLOW", "INBOX"]), ODD_VALUES),
        "rating": ODD_VALUES,
        "text": ODD_VALUES,
    },
)
WA_MESSAGE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": ODD_VALUES,
        "from": st.one_of(st.just("33612345678"), ODD_VALUES),
        "timestamp": ODD_VALUES,
        "type": ODD_VALUES,
        "text": st.one_of(st.fixed_dictionaries({"body": ODD_VALUES}), ODD_VALUES),
        "referral": ODD_VALUES,
    },
)
WA_STATUS_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": ODD_VALUES,
        "status": st.one_of(st.sampled_from(["sent", "delivered", "read", "failed"]), ODD_VALUES),
        "timestamp": ODD_VALUES,
        "errors": st.one_of(
            st.lists(st.fixed_dictionaries({}, optional={"code": ODD_VALUES, "title": ODD_VALUES})),
            ODD_VALUES,
        ),
    },
)


def signed_delivery(messages: list[Any], statuses: list[Any], contacts: Any) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "33100000000", "phone_number_id": PNID},
        "contacts": contacts,
        "messages": messages,
        "statuses": statuses,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": value}]}],
    }


@pytest.fixture
async def ingesting(engine: AsyncEngine, fuzzed: Fuzzed) -> Fuzzed:
    """The fuzzed accounts, the caller with a WhatsApp number and a token that may ingest."""
    await add_channel(engine, fuzzed.caller.id)
    return fuzzed


async def assert_refused_stores_nothing(
    engine: AsyncEngine, response: httpx.Response, before: dict[str, int], sent: Any
) -> None:
    assert response.status_code < 500, (sent, response.text)
    if response.status_code != 200:
        assert await count_rows(engine) == before, (sent, response.text)


@BOUNDED
@given(batch=st.one_of(st.lists(EVENT_LIKE, min_size=1, max_size=4), ODD_VALUES))
async def test_odd_event_batches_never_get_a_500_and_a_refused_one_stores_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, ingesting: Fuzzed, batch: Any
) -> None:
    before = await count_rows(engine)
    # json.dumps writes NaN and Infinity, which Python's parser (the server's) reads back.
    body = json.dumps({"events": batch}).encode()
    headers = {**ingesting.caller.headers, "Content-Type": "application/json"}
    response = await client.post("/v1/events", content=body, headers=headers)
    await assert_refused_stores_nothing(engine, response, before, batch)


@BOUNDED
@given(
    messages=st.one_of(st.lists(WA_MESSAGE_LIKE, max_size=3), ODD_VALUES),
    statuses=st.one_of(st.lists(WA_STATUS_LIKE, max_size=3), ODD_VALUES),
    contacts=st.one_of(
        st.lists(st.fixed_dictionaries({"wa_id": ODD_VALUES, "profile": ODD_VALUES}), max_size=2),
        ODD_VALUES,
    ),
)
async def test_odd_signed_deliveries_never_get_a_500_and_a_refused_one_stores_nothing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    ingesting: Fuzzed,
    messages: Any,
    statuses: Any,
    contacts: Any,
) -> None:
    payload = signed_delivery(messages, statuses, contacts)
    before = await count_rows(engine)
    response = await post_webhook(client, payload)
    await assert_refused_stores_nothing(engine, response, before, payload)


@BOUNDED
@given(
    key=st.one_of(st.text(max_size=30), st.sampled_from(["leak-button", "%00", "..", "a" * 500])),
    params=st.dictionaries(
        st.sampled_from(["utm_campaign", "utm_source", "utm_medium", "utm_term", "x"]),
        st.text(max_size=300),
        max_size=5,
    ),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
)
async def test_odd_button_links_never_get_a_500(
    client: httpx.AsyncClient, fuzzed: Fuzzed, key: str, params: dict[str, str], method: str
) -> None:
    response = await client.request(method, "/w/" + quote(key, safe=""), params=params)
    assert response.status_code < 500, (key, params, response.text)
