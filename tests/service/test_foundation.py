"""Migrations on both engines, token auth, health, the entity queries and the schema file."""

import asyncio
import time
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from starlette.applications import Starlette
from strawberry.utils.str_converters import to_camel_case

from api import accounts
from ingest import aggregates as maintenance
from ingest.buttons import create_button
from models import (
    Agent,
    Contact,
    ContactTag,
    Conversation,
    ConversationTag,
    PendingStatus,
    Tag,
    WidgetClick,
)
from models.db import transaction
from models.migrate import alembic_config, current_revision, head_revision
from models.tables import DailyFigures, HourlyFigures
from resolvers.ads import AdPart
from resolvers.agents import AgentPart
from resolvers.summary import SummaryPart
from resolvers.tags import TagPart
from resolvers.widget import WidgetPart
from schema import schema
from tests.conftest import TestAccount, create_test_account, graphql
from tests.ingest.support import (
    PNID,
    add_channel,
    inbound,
    messages,
    post_webhook,
    rows,
    status_payload,
)
from tests.ingest.test_aggregates import aggregate_rows
from tests.reports.dataset import build_dataset

SCHEMA_FILE = Path(__file__).parents[2] / "schema.graphql"


async def test_migrations_create_every_table_at_head(engine: AsyncEngine) -> None:
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as connection:
        tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    assert {
        "account",
        "channel",
        "api_token",
        "agent",
        "contact",
        "tag",
        "contact_tag",
        "conversation",
        "conversation_tag",
        "message",
        "widget_button",
        "widget_click",
        "ingested_event",
    } <= tables


def test_schema_file_is_in_sync_with_the_code() -> None:
    assert SCHEMA_FILE.read_text() == schema.as_str() + "\n", (
        "schema.graphql is stale: run `make schema`"
    )


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_valid_token_answers(client: httpx.AsyncClient, account: TestAccount) -> None:
    body = await graphql(client, account, "{ agents { email } }")
    assert body == {"data": {"agents": []}}


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ agents { email } }"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_token_is_401(client: httpx.AsyncClient, account: TestAccount) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ agents { email } }"},
        headers={"Authorization": f"Bearer {account.token}x"},
    )
    assert response.status_code == 401
    response = await client.post(
        "/graphql",
        json={"query": "{ agents { email } }"},
        headers={"Authorization": f"Basic {account.token}"},
    )
    assert response.status_code == 401


async def test_revoked_token_is_401(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    async with transaction(engine) as session:
        await accounts.revoke_token(session, account.token_id)
    response = await client.post(
        "/graphql", json={"query": "{ agents { email } }"}, headers=account.headers
    )
    assert response.status_code == 401


async def test_token_is_stored_only_as_a_hash(engine: AsyncEngine, account: TestAccount) -> None:
    async with engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT token_hash FROM api_token")).scalars()
        hashes = list(stored)
    assert account.token not in hashes
    assert accounts.hash_token(account.token) in hashes


async def test_graphiql_page_is_served_to_browsers(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def seed_entities(engine: AsyncEngine, account_id: int) -> int:
    """Two agents, a tagged contact and a tagged conversation; returns the conversation id."""
    async with transaction(engine) as session:
        zoe = Agent(account_id=account_id, email="zoe@acme.test", name="Zoe")
        adam = Agent(account_id=account_id, email="adam@acme.test", name=None)
        contact = Contact(
            account_id=account_id, phone="+33612345678", wa_id="33612345678", name="Léa"
        )
        vip = Tag(account_id=account_id, kind="contact", name="VIP", name_key="vip")
        sales = Tag(account_id=account_id, kind="conversation", name="Sales", name_key="sales")
        billing = Tag(
            account_id=account_id, kind="conversation", name="billing", name_key="billing"
        )
        session.add_all([zoe, adam, contact, vip, sales, billing])
        await session.flush()
        conversation = Conversation(
            account_id=account_id,
            contact_id=contact.id,  # type: ignore[arg-type]
            assignee_id=zoe.id,
            source="INBOUND",
            direction="INBOUND",
            status="CLOSED",
            started_at=1_764_000_000,
            first_inbound_at=1_764_000_000,
            first_response_at=1_764_000_090,
            last_message_at=1_764_000_600,
            closed_at=1_764_003_600,
            message_count=3,
            inbound_count=2,
            outbound_count=1,
            rating=4,
        )
        session.add(conversation)
        await session.flush()
        session.add_all(
            [
                ContactTag(account_id=account_id, contact_id=contact.id, tag_id=vip.id),  # type: ignore[arg-type]
                ConversationTag(
                    account_id=account_id,
                    conversation_id=conversation.id,
                    tag_id=sales.id,  # type: ignore[arg-type]
                ),
                ConversationTag(
                    account_id=account_id,
                    conversation_id=conversation.id,
                    tag_id=billing.id,  # type: ignore[arg-type]
                ),
            ]
        )
        assert conversation.id is not None
        return conversation.id


CONVERSATION_QUERY = """
query ($id: ID!) {
  conversation(id: $id) {
    id startedAt closedAt status direction source messageCount durationSeconds
    firstResponseSeconds rating
    contact { phone name tags { name } }
    agent { email name }
    tags { name }
  }
}
"""


async def test_entity_queries(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    conversation_id = await seed_entities(engine, account.id)
    body = await graphql(client, account, "{ agents { email name } tags { name } }")
    assert body["data"] == {
        "agents": [
            {"email": "adam@acme.test", "name": None},
            {"email": "zoe@acme.test", "name": "Zoe"},
        ],
        "tags": [{"name": "billing"}, {"name": "Sales"}],
    }
    body = await graphql(client, account, CONVERSATION_QUERY, {"id": str(conversation_id)})
    assert body["data"]["conversation"] == {
        "id": str(conversation_id),
        "startedAt": "2025-11-24T16:00:00Z",
        "closedAt": "2025-11-24T17:00:00Z",
        "status": "CLOSED",
        "direction": "INBOUND",
        "source": "INBOUND",
        "messageCount": 3,
        "durationSeconds": 3600,
        "firstResponseSeconds": 90,
        "rating": 4,
        "contact": {"phone": "+33612345678", "name": "Léa", "tags": [{"name": "VIP"}]},
        "agent": {"email": "zoe@acme.test", "name": "Zoe"},
        "tags": [{"name": "billing"}, {"name": "Sales"}],
    }


async def test_answers_are_compact_utf8_json(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Encoded by orjson: UTF-8 as it is (no \\u escapes), no spaces, as the JSON it parses to."""
    conversation_id = await seed_entities(engine, account.id)
    response = await client.post(
        "/graphql",
        json={"query": CONVERSATION_QUERY, "variables": {"id": str(conversation_id)}},
        headers={"Authorization": f"Bearer {account.token}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert '"contact":{"phone":"+33612345678","name":"Léa",'.encode() in response.content
    assert response.json()["data"]["conversation"]["contact"]["name"] == "Léa"


def test_what_orjson_refuses_is_encoded_as_strawberry_does() -> None:
    from api.graphql import WareportsGraphQL

    view = WareportsGraphQL(schema)
    assert view.encode_json({"a": [1.5, "é", None, True]}) == '{"a":[1.5,"é",null,true]}'.encode()
    assert view.encode_json({"n": 2**70}) == '{"n":1180591620717411303424}'  # beyond 64 bits


async def test_conversation_of_another_account_is_null(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    conversation_id = await seed_entities(engine, account.id)
    other = await create_test_account(engine, name="Other")
    body = await graphql(client, other, CONVERSATION_QUERY, {"id": str(conversation_id)})
    assert body == {"data": {"conversation": None}}
    body = await graphql(client, other, "{ agents { email } }")
    assert body == {"data": {"agents": []}}
    body = await graphql(client, account, CONVERSATION_QUERY, {"id": "not-a-number"})
    assert body == {"data": {"conversation": None}}


GROWING = {
    ("message", "id"),
    ("widget_click", "id"),
    ("pending_status", "id"),
    ("conversation", "widget_click_id"),
    ("aggregated_conversation", "last_message_id"),
}


async def column_types(engine: AsyncEngine) -> dict[tuple[str, str], str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            )
        )
        columns = {(table, column): kind for table, column, kind in rows}
        sequences = await connection.execute(
            text("SELECT sequence_name, data_type FROM information_schema.sequences")
        )
        columns |= {(name, "sequence"): kind for name, kind in sequences}
    return columns


async def test_ids_that_grow_with_traffic_pass_integer_on_postgresql(
    database_url: str,
    app: Starlette,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    account: TestAccount,
) -> None:
    """A SERIAL stopped at 2,147,483,647 messages, clicks or pending statuses (issue 12). The
    migration retypes a database filled at the previous head, keeping its rows; then ids go
    past INTEGER and every path still stores and reports them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's INTEGER PRIMARY KEY holds 64 bits")
    config = alembic_config(database_url)
    await add_channel(engine, account.id)
    t = int(time.time()) - 3600
    assert (await post_webhook(client, inbound("w-before", "33612345678", t))).status_code == 200
    # Today's code reads tables 0004 lacks: the row is stored at head, then taken down to 0004.
    await engine.dispose()
    await app.state.writer.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0004_clicks")
    assert {
        (t, c): k for (t, c), k in (await column_types(engine)).items() if (t, c) in GROWING
    } == (dict.fromkeys(GROWING, "integer"))
    await asyncio.to_thread(command.upgrade, config, "head")
    # As `wareports migrate` before `serve`: no connection keeps statements prepared before.
    await engine.dispose()
    await app.state.writer.engine.dispose()
    types = await column_types(engine)
    assert {key: types[key] for key in GROWING} == dict.fromkeys(GROWING, "bigint")
    for sequence in ("message_id_seq", "widget_click_id_seq", "pending_status_id_seq"):
        assert types[sequence, "sequence"] == "bigint"
    async with engine.begin() as connection:
        for table in ("message", "widget_click", "pending_status"):
            await connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 2147483647)")
            )
    for wamid, at in (("w-after", t + 60), ("w-later", t + 120)):
        assert (await post_webhook(client, inbound(wamid, "33612345678", at))).status_code == 200
    assert (await post_webhook(client, status_payload("out-1", "read", t + 130))).status_code == 200
    async with transaction(engine) as session:
        button = await create_button(session, account.id, PNID, "Pricing", "Hi")
    assert (await client.get(f"/w/{button.key}")).status_code == 302
    ids = {row.wamid: row.id for row in await messages(engine)}
    assert ids == {"w-before": 1, "w-after": 2**31, "w-later": 2**31 + 1}
    [pending] = await rows(engine, PendingStatus, PendingStatus.id)
    [click] = await rows(engine, WidgetClick, WidgetClick.id)
    assert (pending.id, click.id) == (2**31, 2**31)
    day = datetime.fromtimestamp(t, UTC).date().isoformat()
    body = await graphql(
        client,
        account,
        f'{{ summaryReport(filter: {{from: "{day}", to: "{day}", timezone: "UTC"}})'
        " { totals { messages } } }",
    )
    assert body == {"data": {"summaryReport": {"totals": {"messages": 3}}}}


@pytest.mark.parametrize(
    ("previous", "column", "total"),
    [
        # 0006: the messages of K0..K8.
        ("0005_growing_ids", "message_count_sum", 27),
        # 0007: K0 (300 s, on the bound), K8 (300 s), K1 (120 s), K6 (180 s); not K7 (600 s).
        ("0006_messages_per_conversation", "frt_le_300", 4),
        # 0008: the outbound messages delivered, read or played: K0 2, K8 1, K1 2, K4 2, K5 2
        # (its failed one aside), K6 1 (Bob's has no status), K7 1; K2's is only sent.
        ("0007_distributions", "delivered_messages", 11),
        # 0010: business time is calendar time without office hours: K0 300, K8 300, K1 120,
        # K2 1800, K4 1800, K5 900 (the bot's message is no reply), K6 180, K7 600.
        ("0009_office_hours", "first_response_business_sum", 6000),
    ],
)
async def test_a_figure_migration_fills_what_ingestion_keeps(
    database_url: str, app: Starlette, engine: AsyncEngine, previous: str, column: str, total: int
) -> None:
    """A migration that adds figure columns to the aggregate tables and the record of each
    conversation (0006: `message_count_sum`; 0007: csat points and the distributions' bins;
    0008: the delivery funnel's message counts, on the local day each message was sent; 0010:
    the business-time sums and the service-level counts)
    fills them from the rows they count already: a database that held every other figure at
    the revision before gets the values the aggregates keep (tags, tag pairs, agents, sources
    and local days of the hand-built dataset)."""
    data = await build_dataset(engine)
    kept = await aggregate_rows(engine, data.account.id)
    async with engine.connect() as connection:
        summed = await connection.scalar(
            text(f"SELECT SUM({column}) FROM daily_figures WHERE account_id = :account"),
            {"account": data.account.id},
        )
    assert summed == total
    config = alembic_config(database_url)
    await engine.dispose()
    await app.state.writer.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, previous)
    async with engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("daily_figures")}
        )
    assert column not in columns
    await asyncio.to_thread(command.upgrade, config, "head")
    await engine.dispose()
    assert await aggregate_rows(engine, data.account.id) == kept


async def test_the_hourly_migration_fills_the_heatmap_cells_ingestion_keeps(
    database_url: str, app: Starlette, engine: AsyncEngine
) -> None:
    """0015 adds the tables of local hours (the heatmap's) and the hour each conversation
    started to the record, and fills them for built aggregates from what they count already:
    the same rows as the deltas left (the hand-built dataset: Paris, across the change to
    summer time, with tags, agents and late statuses)."""
    data = await build_dataset(engine)
    kept = await aggregate_rows(engine, data.account.id)
    names = [column.name for column in HourlyFigures.__table__.columns]  # type: ignore[attr-defined]
    started = sum(row[names.index("conversations")] for row in kept["hourly_figures"])
    stored = [c for c in await rows(engine, Conversation) if c.account_id == data.account.id]
    assert started == len(stored) > 0  # each conversation in the cell of one hour
    config = alembic_config(database_url)
    await engine.dispose()
    await app.state.writer.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0014_tenant_keys")
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert not tables & {"hourly_figures", "agent_hourly_figures", "tag_hourly_figures"}
    await asyncio.to_thread(command.upgrade, config, "head")
    await engine.dispose()
    assert await aggregate_rows(engine, data.account.id) == kept


async def test_the_contact_set_migration_fills_the_sets_ingestion_keeps(
    database_url: str, app: Starlette, engine: AsyncEngine
) -> None:
    """0016 adds the contacts of each aggregate cell and fills them for built aggregates from
    the record of each conversation: the same sets as the rebuild of the hand-built dataset
    left (every contact of the account in the cells of its days)."""
    data = await build_dataset(engine)
    kept = await aggregate_rows(engine, data.account.id)
    names = [column.name for column in DailyFigures.__table__.columns]  # type: ignore[attr-defined]
    held = {c for row in kept["daily_figures"] for c in row[names.index("contacts")]}
    stored = [c for c in await rows(engine, Conversation) if c.account_id == data.account.id]
    assert held == {c.contact_id for c in stored} and len(held) > 1
    config = alembic_config(database_url)
    await engine.dispose()
    await app.state.writer.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0015_hourly")
    async with engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("tag_pair_daily_figures")}
        )
    assert "contacts" not in columns
    await asyncio.to_thread(command.upgrade, config, "head")
    await engine.dispose()
    assert await aggregate_rows(engine, data.account.id) == kept


async def test_the_pricing_migration_finds_the_country_of_every_stored_contact(
    database_url: str,
    app: Starlette,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    account: TestAccount,
) -> None:
    """0013 derives `contact.country` from the numbers stored at 0012 (where no insert gave
    one); then the contacts ingestion creates get theirs from the column's default."""
    config = alembic_config(database_url)
    await engine.dispose()
    await app.state.writer.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0012_window")
    async with engine.begin() as connection:
        for phone in ("+33612345678", "+972987654321", "+80012345678"):
            await connection.execute(
                text("INSERT INTO contact (account_id, phone) VALUES (:a, :p)"),
                {"a": account.id, "p": phone},
            )
    await asyncio.to_thread(command.upgrade, config, "head")
    await engine.dispose()
    await add_channel(engine, account.id)
    t = int(time.time()) - 60
    response = await post_webhook(client, inbound("w-1", "12125550123", t))
    assert response.status_code == 200
    found = {row.phone: row.country for row in await rows(engine, Contact)}
    assert found == {
        "+33612345678": "FR",
        "+972987654321": "IL",
        "+80012345678": None,
        "+12125550123": "US",
    }


@pytest.mark.parametrize(
    ("parts", "type_name"),
    [
        (SummaryPart, "SummaryReport"),
        (AgentPart, "AgentRow"),
        (TagPart, "TagRow"),
        (WidgetPart, "WidgetReport"),
        (AdPart, "AdReport"),
    ],
)
def test_every_report_part_is_a_field_of_its_type(parts: type[Enum], type_name: str) -> None:
    """A report computes the parts whose fields a query selects (`Selected.parts`): each part
    must name a field, or renaming one would silently compute nothing for it."""
    graphql_type = schema._schema.get_type(type_name)
    assert graphql_type is not None
    fields = set(graphql_type.fields)  # type: ignore[union-attr]
    # The widget's totals are its `clicks` and `conversations` fields.
    named = {"clicks", "conversations"} if parts is WidgetPart else set()
    expected = {to_camel_case(part.value) for part in parts if part is not WidgetPart.TOTALS}
    assert expected | named <= fields


# Tables of migration 0014 (issue 20): their rows, in order, must survive it both ways.
TENANT_TABLES = (
    "agent",
    "contact",
    "tag",
    "contact_tag",
    "conversation",
    "conversation_tag",
    "message",
    "widget_click",
    "pending_status",
    "pending_change",
    "aggregated_conversation",
    "aggregated_conversation_tag",
)


# Columns later revisions add (0015: the hour a conversation started, in the record).
LATER_COLUMNS = {("aggregated_conversation", "hour")}


async def _table_rows(engine: AsyncEngine) -> dict[str, list[str]]:
    found = {}
    async with engine.connect() as connection:
        for table in TENANT_TABLES:
            result = await connection.execute(text(f"SELECT * FROM {table}"))
            found[table] = sorted(
                repr(
                    sorted(
                        (k, v) for k, v in row._mapping.items() if (table, k) not in LATER_COLUMNS
                    )
                )
                for row in result
            )
    return found


async def _keys(engine: AsyncEngine) -> dict[str, object]:
    """Each table's primary key and foreign keys, as the database has them."""

    def read(sync: object) -> dict[str, object]:
        inspector = inspect(sync)
        return {
            table: (
                inspector.get_pk_constraint(table)["constrained_columns"],
                sorted(
                    (key["constrained_columns"], key["referred_table"], key["referred_columns"])
                    for key in inspector.get_foreign_keys(table)
                ),
            )
            for table in TENANT_TABLES
        }

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def test_the_tenant_key_migration_keeps_every_row_and_puts_the_account_in_every_key(
    database_url: str, app: Starlette, engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """0014 (issue 20) on a database filled at 0013 (the hand-built report dataset, with tags,
    clicks, statuses): every row is kept, the keys become the metadata's ((account_id, id),
    foreign keys by (account_id, id); on SQLite the row id stays the primary key), and a row
    can no longer point to another account's conversation."""
    data = await build_dataset(engine)
    before, kept = await _table_rows(engine), await aggregate_rows(engine, data.account.id)
    config = alembic_config(database_url)
    await engine.dispose()
    await app.state.writer.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0013_pricing")
    old = await _keys(engine)
    assert old["message"] == (
        ["id"],
        sorted(
            [
                (["account_id"], "account", ["id"]),
                (["agent_id"], "agent", ["id"]),
                (["conversation_id"], "conversation", ["id"]),
            ]
        ),
    )
    assert await _table_rows(engine) == before
    await asyncio.to_thread(command.upgrade, config, "head")
    await engine.dispose()
    assert await _table_rows(engine) == before
    assert await aggregate_rows(engine, data.account.id) == kept
    new = await _keys(engine)
    sqlite = database_url.startswith("sqlite")
    for table in TENANT_TABLES:
        model = SQLModel.metadata.tables[table]
        primary = [column.name for column in model.primary_key.columns]
        if sqlite and primary == ["account_id", "id"]:
            primary = ["id"]  # the row id
        foreign = sorted(
            (
                [element.parent.name for element in key.elements],
                key.referred_table.name,
                [element.column.name for element in key.elements],
            )
            for key in model.foreign_key_constraints
        )
        assert new[table] == (primary, foreign), table
    assert new["message"][1] == sorted(
        [
            (["account_id"], "account", ["id"]),
            (["account_id", "agent_id"], "agent", ["account_id", "id"]),
            (["account_id", "conversation_id"], "conversation", ["account_id", "id"]),
        ]
    )
    other = await create_test_account(engine, "Other", "UTC")
    conversation_id = (await rows(engine, Conversation, Conversation.id))[0].id
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO message (account_id, conversation_id, wamid, direction, sender,"
                    " type, sent_at) VALUES (:a, :c, 'stray', 'INBOUND', 'contact', 'text', 0)"
                ),
                {"a": other.id, "c": conversation_id},
            )
    # Ingestion and the aggregates still agree after it.
    await add_channel(engine, data.account.id, phone_number_id="pnid-after-0014")
    t = int(time.time()) - 60
    payload = inbound("w-after-0014", "33600000001", t, phone_number_id="pnid-after-0014")
    assert (await post_webhook(client, payload)).json()["messages"] == 1
    kept = await aggregate_rows(engine, data.account.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, data.account.id)
    assert await aggregate_rows(engine, data.account.id) == kept
