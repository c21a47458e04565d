"""conversationDetails: order, keyset pages and cursors, totalCount, nested fields, filters, and
a constant number of SQL statements whatever the page size."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TestAccount, counting_statements, create_test_account, graphql
from tests.factories import at, building, inbound, reply
from tests.reports.dataset import RANGE, build_dataset

DETAILS = """
query ($filter: ReportFilter!, $first: Int, $after: String) {
  conversationDetails(filter: $filter, first: $first, after: $after) {
    edges {
      cursor
      node {
        id startedAt closedAt status direction source messageCount durationSeconds
        firstResponseSeconds rating
        contact { phone name tags { name } }
        agent { email }
        tags { name }
      }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""

IDS = """
query ($filter: ReportFilter!, $first: Int, $after: String) {
  conversationDetails(filter: $filter, first: $first, after: $after) {
    edges { node { id } } pageInfo { hasNextPage endCursor } totalCount
  }
}
"""

C1 = {"phone": "+33600000001", "name": "Léa", "tags": [{"name": "VIP"}]}
C2 = {"phone": "+33600000002", "name": "Marc", "tags": [{"name": "VIP"}, {"name": "Wholesale"}]}
C3 = {"phone": "+33600000003", "name": None, "tags": []}
C4 = {"phone": "+33600000004", "name": "Nora", "tags": [{"name": "Wholesale"}]}
C5 = {"phone": "+33600000005", "name": "Omar", "tags": []}


def node(
    name: str,
    started: str,
    closed: str | None,
    status: str,
    direction: str,
    source: str,
    messages: int,
    duration: int | None,
    first_response: int | None,
    rating: int | None,
    contact: dict[str, Any],
    agent: str | None,
    tags: list[str],
) -> dict[str, Any]:
    return {
        "id": name,  # replaced by the real id in the test
        "startedAt": started,
        "closedAt": closed,
        "status": status,
        "direction": direction,
        "source": source,
        "messageCount": messages,
        "durationSeconds": duration,
        "firstResponseSeconds": first_response,
        "rating": rating,
        "contact": contact,
        "agent": None if agent is None else {"email": agent},
        "tags": [{"name": tag} for tag in tags],
    }


# The Paris range, newest first: K8 (03-27 00:30 local) is in, K7 (04-03 00:30 local) is out.
PARIS_NODES = [
    node("K6", "2026-03-31T12:00:00Z", None, "PENDING", "INBOUND", "INBOUND", 3, None, 180, None,
         C5, "bob@acme.test", []),
    node("K5", "2026-03-30T07:00:00Z", "2026-03-30T08:00:00Z", "CLOSED", "OUTBOUND", "FLOW", 4,
         3600, 900, 2, C2, "alice@acme.test", ["Sales"]),
    node("K4", "2026-03-29T21:30:00Z", None, "PENDING", "OUTBOUND", "INBOX", 3, None, 1800, None,
         C4, "bob@acme.test", ["Billing"]),
    node("K3", "2026-03-29T00:30:00Z", "2026-03-30T01:30:00Z", "CLOSED", "OUTBOUND", "FLOW", 2,
         90000, None, None, C3, None, []),
    node("K2", "2026-03-27T22:50:00Z", "2026-03-28T00:00:00Z", "CLOSED", "INBOUND", "INBOUND", 2,
         4200, 1800, None, C2, "bob@acme.test", ["Support"]),
    node("K1", "2026-03-27T08:00:00Z", "2026-03-27T09:00:00Z", "CLOSED", "INBOUND", "INBOUND", 4,
         3600, 120, 5, C1, "alice@acme.test", ["Billing", "Sales"]),
    node("K8", "2026-03-26T23:30:00Z", "2026-03-27T00:30:00Z", "CLOSED", "INBOUND", "INBOUND", 3,
         3600, 300, 4, C4, "carol@acme.test", ["Sales"]),
]  # fmt: skip


def ids_of(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in body["data"]["conversationDetails"]["edges"]]


async def test_details_pages_in_the_account_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    expected = [{**row, "id": str(data.ids[row["id"]])} for row in PARIS_NODES]
    pages: list[list[dict[str, Any]]] = []
    after = None
    for has_next in (True, True, False):
        body = await graphql(
            client, data.account, DETAILS, {"filter": RANGE, "first": 3, "after": after}
        )
        connection = body["data"]["conversationDetails"]
        assert connection["totalCount"] == 7
        assert connection["pageInfo"]["hasNextPage"] is has_next
        edges = connection["edges"]
        assert connection["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        pages.append([edge["node"] for edge in edges])
        after = connection["pageInfo"]["endCursor"]
    assert pages == [expected[:3], expected[3:6], expected[6:]]


async def test_details_in_an_explicit_zone_and_filtered(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    ids = data.ids
    body = await graphql(client, data.account, IDS, {"filter": {**RANGE, "timezone": "UTC"}})
    assert ids_of(body) == [str(ids[name]) for name in ("K7", "K6", "K5", "K4", "K3", "K2", "K1")]
    assert body["data"]["conversationDetails"]["totalCount"] == 7
    assert body["data"]["conversationDetails"]["pageInfo"] == {
        "hasNextPage": False,
        "endCursor": body["data"]["conversationDetails"]["pageInfo"]["endCursor"],
    }
    body = await graphql(
        client, data.account, IDS, {"filter": {**RANGE, "agentEmails": ["Bob@Acme.test"]}}
    )
    assert ids_of(body) == [str(ids[name]) for name in ("K6", "K4", "K2")]
    assert body["data"]["conversationDetails"]["totalCount"] == 3
    filters = {**RANGE, "contactTags": ["wholesale"], "sources": ["INBOUND"]}
    body = await graphql(client, data.account, IDS, {"filter": filters})
    # Wholesale contacts c2 and c4; of their conversations K2 and K8 are INBOUND.
    assert ids_of(body) == [str(ids["K2"]), str(ids["K8"])]
    body = await graphql(client, data.other, IDS, {"filter": RANGE})
    assert len(ids_of(body)) == 1 and body["data"]["conversationDetails"]["totalCount"] == 1
    assert str(ids_of(body)[0]) not in {str(value) for value in ids.values()}


async def test_empty_page(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    body = await graphql(
        client, data.account, IDS, {"filter": {"from": "2025-01-01", "to": "2025-01-01"}}
    )
    assert body["data"]["conversationDetails"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "totalCount": 0,
    }


async def test_equal_start_instants_page_by_id(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    moment = at("2026-05-04 09:00")
    created: list[int] = []
    async with building(engine, account.id) as make:
        for index in range(5):
            contact = await make.contact(f"+3361000000{index}")
            row = await make.conversation(contact, [inbound(moment if index < 4 else moment - 60)])
            assert row.id is not None
            created.append(row.id)
    tied, earlier = sorted(created[:4], reverse=True), created[4]
    seen: list[str] = []
    after = None
    for _ in range(5):
        body = await graphql(
            client,
            account,
            IDS,
            {"filter": {"from": "2026-05-04", "to": "2026-05-04"}, "first": 1, "after": after},
        )
        seen += ids_of(body)
        after = body["data"]["conversationDetails"]["pageInfo"]["endCursor"]
    assert seen == [str(row_id) for row_id in [*tied, earlier]]
    assert body["data"]["conversationDetails"]["pageInfo"]["hasNextPage"] is False


async def test_statement_count_does_not_grow_with_the_page(
    client: httpx.AsyncClient, engine: AsyncEngine, engines: tuple[AsyncEngine, AsyncEngine]
) -> None:
    account = await create_test_account(engine, timezone="Europe/Paris")
    async with building(engine, account.id) as make:
        agents = [await make.agent(f"agent{n}@acme.test") for n in range(3)]
        for index in range(60):
            contact = await make.contact(f"+336200000{index:02d}", tags=[f"segment{index % 4}"])
            start = at("2026-06-01 08:00") + index * 600
            await make.conversation(
                contact,
                [inbound(start), reply(start + 30, agents[index % 3])],
                assignee=agents[index % 3],
                tags=[f"topic{index % 5}", "all"],
            )
    variables = {"filter": {"from": "2026-06-01", "to": "2026-06-01"}}
    await graphql(client, account, DETAILS, {**variables, "first": 1})  # token's last-used update
    counts = {}
    for size in (5, 50):
        with counting_statements(*engines) as statements:
            body = await graphql(client, account, DETAILS, {**variables, "first": size})
        assert len(body["data"]["conversationDetails"]["edges"]) == size
        edge = body["data"]["conversationDetails"]["edges"][0]["node"]
        assert edge["contact"]["tags"] and edge["agent"] and len(edge["tags"]) == 2
        counts[size] = len(statements)
    # token, page, the aggregates' zone and totalCount from them, contacts, contact tags,
    # agents, conversation tags
    assert counts == {5: 8, 50: 8}


async def test_a_bare_total_count_reads_no_page(
    client: httpx.AsyncClient, engine: AsyncEngine, engines: tuple[AsyncEngine, AsyncEngine]
) -> None:
    data = await build_dataset(engine)
    query = "query ($f: ReportFilter!) { conversationDetails(filter: $f) { totalCount } }"
    await graphql(client, data.account, query, {"f": RANGE})
    with counting_statements(*engines) as statements:
        body = await graphql(client, data.account, query, {"f": RANGE})
    assert body == {"data": {"conversationDetails": {"totalCount": 7}}}
    assert len(statements) == 3  # token, the aggregates' zone, count


async def test_only_the_nested_entities_selected_are_read(
    client: httpx.AsyncClient, engine: AsyncEngine, engines: tuple[AsyncEngine, AsyncEngine]
) -> None:
    data = await build_dataset(engine)
    query = (
        "query ($f: ReportFilter!) { conversationDetails(filter: $f) { edges { node { %s } } } }"
    )
    await graphql(client, data.account, query % "id", {"f": RANGE})  # token's last-used update
    expected = {  # the token, the page, then one statement per nested kind selected
        "id rating": 2,
        "agent { email }": 3,
        "contact { phone }": 3,
        "contact { tags { name } }": 4,
        "... on Conversation { tags { name } agent { email } }": 4,
        "contact { tags { name } } agent { name } tags { id }": 6,
    }
    counts = {}
    for selection in expected:
        with counting_statements(*engines) as statements:
            body = await graphql(client, data.account, query % selection, {"f": RANGE})
        assert "errors" not in body, body
        assert len(body["data"]["conversationDetails"]["edges"]) == 7
        counts[selection] = len(statements)
    assert counts == expected
