"""Tenant isolation: two accounts with overlapping data (same phone numbers, tag names, agent
e-mails, conversations on the same days); every root field with every nested field, and every
export kind, answers each token with its own account's data only."""

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from graphql import GraphQLEnumType
from sqlalchemy.ext.asyncio import AsyncEngine

from schema import schema
from tests.conftest import TestAccount, create_test_account, graphql
from tests.factories import at, building, inbound, reply
from tests.schema_walk import Arguments, RootField, operation, root_fields, strings_in

ROOT_FIELDS = root_fields(schema)
QUERIES = [root for root in ROOT_FIELDS if root.operation == "query"]
REPORT_KINDS = list(schema._schema.get_type("ReportKind").values)  # type: ignore[union-attr]
assert isinstance(schema._schema.get_type("ReportKind"), GraphQLEnumType)
JANUARY = Arguments(start=date(2026, 1, 1), end=date(2026, 1, 31), first=100)
FILTER = '{from: "2026-01-01", to: "2026-01-31"}'


@dataclass(frozen=True)
class Seeded:
    """What one account holds: its row ids and the names that only it uses."""

    letter: str
    account: TestAccount
    ids: frozenset[str]
    conversation_ids: tuple[int, ...]

    @property
    def own_names(self) -> set[str]:
        return {f"{first} {self.letter}" for first in ("Alice", "Bob", "Ana", "Ben", "Header")}


async def seed(engine: AsyncEngine, account: TestAccount, letter: str, busy: bool) -> Seeded:
    """The same agents, contacts, tags and days in both accounts; names end with the account's
    letter; the busy account has one conversation and one click more."""
    async with building(engine, account.id) as make:
        alice = await make.agent("alice@shared.test", f"Alice {letter}")
        bob = await make.agent("bob@shared.test", f"Bob {letter}")
        ana = await make.contact("+33600000001", f"Ana {letter}", tags=["VIP"])
        ben = await make.contact("+33600000002", f"Ben {letter}")
        first = await make.conversation(
            ana,
            [inbound(at("2026-01-05 09:00")), reply(at("2026-01-05 09:05"), alice)],
            assignee=alice,
            tags=["Sales"],
            closed_at=at("2026-01-05 10:00"),
            closed_by=alice,
            ratings=[(at("2026-01-05 10:01"), 5)],
        )
        conversations = [
            first,
            await make.conversation(
                ben, [inbound(at("2026-01-06 12:00"))], assignee=bob, tags=["Billing"]
            ),
        ]
        button = await make.button(f"Header {letter}")
        await make.click(button, at("2026-01-05 08:55"), utm_campaign="winter", conversation=first)
        if busy:
            conversations.append(
                await make.conversation(
                    ana,
                    [
                        inbound(at("2026-01-06 15:00")),
                        reply(at("2026-01-06 15:10"), bob),
                        inbound(at("2026-01-06 15:20")),
                    ],
                    assignee=bob,
                    tags=["Sales", "Billing"],
                )
            )
            await make.click(button, at("2026-01-06 14:55"), utm_campaign="winter")
        tags = [await make.tag("conversation", name) for name in ("Sales", "Billing")]
        vip = await make.tag("contact", "VIP")
        rows: list[Any] = [alice, bob, ana, ben, *conversations, *tags, vip, button]
    return Seeded(
        letter=letter,
        account=account,
        ids=frozenset(str(row.id) for row in rows),
        conversation_ids=tuple(conversation.id for conversation in conversations),
    )


def ids_in(value: Any) -> set[str]:
    """Every `id` anywhere in an answer."""
    if isinstance(value, dict):
        found = {str(value["id"])} if value.get("id") is not None else set()
        return found.union(*(ids_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(ids_in(item) for item in value))
    return set()


def query_of(root: RootField, seeded: Seeded) -> str:
    arguments = Arguments(
        start=JANUARY.start,
        end=JANUARY.end,
        first=JANUARY.first,
        conversation_id=seeded.conversation_ids[0],
    )
    return operation(root, arguments)


async def answers(client: httpx.AsyncClient, seeded: Seeded) -> dict[str, Any]:
    """Every query root field, all nested fields selected, as this account's token sees it."""
    found = {}
    for root in QUERIES:
        body = await graphql(client, seeded.account, query_of(root, seeded))
        assert "errors" not in body, (root.id, body)
        found[root.id] = body["data"]
    return found


async def exports(client: httpx.AsyncClient, seeded: Seeded) -> dict[str, str]:
    """Every export kind's CSV for January, downloaded through its link."""
    found = {}
    for kind in REPORT_KINDS:
        body = await graphql(
            client,
            seeded.account,
            f"mutation {{ exportReportCsv(report: {kind}, filter: {FILTER}) {{ url }} }}",
        )
        assert "errors" not in body, body
        response = await client.get(body["data"]["exportReportCsv"]["url"])
        assert response.status_code == 200, response.text
        found[kind] = response.text
    return found


def expected_figures(busy: bool) -> dict[str, Any]:
    """Worked out by hand from `seed`: the quiet account has 2 conversations, the busy one 3."""
    return {
        "conversations": 3 if busy else 2,
        "messages": 6 if busy else 3,
        "distinctContacts": 2,
        "closedConversations": 1,
        "ratedConversations": 1,
        "agent_rows": (
            [("bob@shared.test", 2), ("alice@shared.test", 1)]
            if busy
            else [("alice@shared.test", 1), ("bob@shared.test", 1)]
        ),
        "tag_rows": [("Billing", 2), ("Sales", 2)] if busy else [("Billing", 1), ("Sales", 1)],
        "clicks": 2 if busy else 1,
        "click_conversations": 1,
    }


def check_figures(found: dict[str, Any], seeded: Seeded, busy: bool) -> None:
    expected = expected_figures(busy)
    letter = seeded.letter
    assert [a["name"] for a in found["query.agents"]["agents"]] == [
        f"Alice {letter}",
        f"Bob {letter}",
    ]
    assert [t["name"] for t in found["query.tags"]["tags"]] == ["Billing", "Sales"]
    totals = found["query.summaryReport"]["summaryReport"]["totals"]
    for name in ("conversations", "messages", "distinctContacts", "closedConversations"):
        assert totals[name] == expected[name], name
    assert totals["ratedConversations"] == expected["ratedConversations"]
    rows = found["query.agentReport"]["agentReport"]["rows"]
    assert [(r["agent"]["email"], r["metrics"]["conversations"]) for r in rows] == expected[
        "agent_rows"
    ]
    assert {r["agent"]["name"] for r in rows} <= seeded.own_names
    rows = found["query.tagReport"]["tagReport"]["rows"]
    assert [(r["tag"]["name"], r["metrics"]["conversations"]) for r in rows] == expected["tag_rows"]
    details = found["query.conversationDetails"]["conversationDetails"]
    assert details["totalCount"] == expected["conversations"]
    assert sorted(int(edge["node"]["id"]) for edge in details["edges"]) == sorted(
        seeded.conversation_ids
    )
    names = {edge["node"]["contact"]["name"] for edge in details["edges"]}
    assert names == {f"Ana {letter}", f"Ben {letter}"}
    widget = found["query.widgetReport"]["widgetReport"]
    assert (widget["clicks"], widget["conversations"]) == (
        expected["clicks"],
        expected["click_conversations"],
    )
    conversation = found["query.conversation"]["conversation"]
    assert conversation["id"] == str(seeded.conversation_ids[0])
    assert conversation["contact"]["name"] == f"Ana {letter}"
    assert conversation["agent"]["name"] == f"Alice {letter}"


def assert_nothing_of(other: Seeded, found: Any, seeded: Seeded) -> None:
    """No id or name of the other account anywhere in an answer."""
    assert ids_in(found) <= seeded.ids
    leaked = strings_in(found) & other.own_names
    assert not leaked, leaked


@pytest.mark.parametrize("quiet_first", [True, False], ids=["quiet-first", "busy-first"])
async def test_every_field_and_export_sees_only_its_account(
    client: httpx.AsyncClient, engine: AsyncEngine, quiet_first: bool
) -> None:
    first_account = await create_test_account(engine, name="First")
    second_account = await create_test_account(engine, name="Second")
    first = await seed(engine, first_account, "F", busy=not quiet_first)
    alone = await answers(client, first)
    alone_exports = await exports(client, first)
    second = await seed(engine, second_account, "S", busy=quiet_first)

    together = await answers(client, first)
    # The second account's rows, with the same phones, tags, e-mails and days, change nothing.
    assert together == alone
    assert await exports(client, first) == alone_exports
    for seeded, other, busy in ((first, second, not quiet_first), (second, first, quiet_first)):
        found = await answers(client, seeded)
        check_figures(found, seeded, busy)
        assert_nothing_of(other, found, seeded)
        for kind, text in (await exports(client, seeded)).items():
            leaked = {name for name in other.own_names if name in text}
            assert not leaked, (kind, leaked)
        details_csv = (await exports(client, seeded))["DETAILS"]
        assert f"Ana {seeded.letter}" in details_csv


@pytest.mark.parametrize("root", QUERIES, ids=lambda root: root.id)
async def test_each_root_field_sees_only_its_account(
    client: httpx.AsyncClient, engine: AsyncEngine, root: RootField
) -> None:
    """Per root field (new fields are picked up from the schema): both tokens, full selection."""
    quiet = await seed(engine, await create_test_account(engine, name="Quiet"), "Q", busy=False)
    busy = await seed(engine, await create_test_account(engine, name="Busy"), "B", busy=True)
    for seeded, other in ((quiet, busy), (busy, quiet)):
        body = await graphql(client, seeded.account, query_of(root, seeded))
        assert "errors" not in body, body
        assert_nothing_of(other, body["data"], seeded)


async def test_another_accounts_conversation_is_null(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    quiet = await seed(engine, await create_test_account(engine, name="Quiet"), "Q", busy=False)
    busy = await seed(engine, await create_test_account(engine, name="Busy"), "B", busy=True)
    query = "query ($id: ID!) { conversation(id: $id) { id contact { name } agent { name } } }"
    for seeded, other in ((quiet, busy), (busy, quiet)):
        for conversation_id in seeded.conversation_ids:
            body = await graphql(client, seeded.account, query, {"id": str(conversation_id)})
            assert body["data"]["conversation"]["id"] == str(conversation_id)
        for conversation_id in other.conversation_ids:
            body = await graphql(client, seeded.account, query, {"id": str(conversation_id)})
            assert body == {"data": {"conversation": None}}
