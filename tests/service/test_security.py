"""Safe to expose: scopes on every root field, token lifecycle, query limits refused before any SQL,
error masking, introspection switch, body checks, CORS and per-token rate limits."""

import asyncio
import base64
import gc
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api import accounts
from api.app import create_app
from api.ratelimit import RateLimiter
from models import Agent, ApiToken
from models.db import transaction
from models.settings import Settings
from schema import schema
from tests.conftest import (
    ALL_SCOPES,
    TestAccount,
    counting_statements,
    create_test_account,
    graphql,
    make_settings,
)
from tests.factories import at, building, inbound
from tests.schema_walk import RootField, declared_scopes, operation, root_fields

ROOT_FIELDS = root_fields(schema)
# Every root field must be listed here with the scope it needs: a new field fails the test
# below until someone decides its scope.
REQUIRED_SCOPES = {
    "query.agents": "reports:read",
    "query.tags": "reports:read",
    "query.buttons": "reports:read",
    "query.conversation": "reports:read",
    "query.summaryReport": "reports:read",
    "query.agentReport": "reports:read",
    "query.tagReport": "reports:read",
    "query.conversationDetails": "reports:read",
    "query.widgetReport": "reports:read",
    "query.officeHours": "reports:read",
    "query.serviceLevel": "reports:read",
    "query.adReport": "reports:read",
    "mutation.exportReportCsv": "reports:export",
}
TEST_REDIS_URL = os.environ.get("WAREPORTS_TEST_REDIS_URL")
STORAGES = ["memory", "redis"]


# --- helpers -------------------------------------------------------------------------------


async def add_token(engine: AsyncEngine, account_id: int, scopes: list[str]) -> str:
    return (await add_token_of(engine, account_id, scopes)).token


async def add_token_of(engine: AsyncEngine, account_id: int, scopes: list[str]) -> TestAccount:
    """Another token of an existing account."""
    async with transaction(engine) as session:
        row, token = await accounts.create_token(session, account_id, scopes)
    assert row.id is not None
    return TestAccount(id=account_id, token=token, token_id=row.id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app with other settings than the `app` fixture's, and a client for it."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


# --- scopes --------------------------------------------------------------------------------


def test_every_root_field_declares_the_scope_it_needs() -> None:
    found = {root.id: declared_scopes(root) for root in ROOT_FIELDS}
    missing = sorted(set(found) - set(REQUIRED_SCOPES))
    assert not missing, f"decide the scope of {missing} in REQUIRED_SCOPES"
    for field_id, scopes in found.items():
        assert scopes == [REQUIRED_SCOPES[field_id]], field_id


@pytest.mark.parametrize("root", ROOT_FIELDS, ids=lambda root: root.id)
async def test_a_token_without_the_scope_is_forbidden(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, root: RootField
) -> None:
    needed = REQUIRED_SCOPES[root.id]
    others = [scope for scope in ALL_SCOPES if scope not in (needed, "admin")]
    token = await add_token(engine, account.id, others)
    await graphql(client, token, "{ __typename }")  # pool warmed, token's last use recorded
    with counting_statements(engine, naming_not="api_token") as statements:
        body = await graphql(client, token, operation(root, full=False))
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "scope": needed}
    assert needed in body["errors"][0]["message"]
    assert body["data"] is None or body["data"][root.name] is None
    assert statements == []  # refused before the resolver: nothing read


@pytest.mark.parametrize("root", ROOT_FIELDS, ids=lambda root: root.id)
async def test_the_scope_or_admin_is_enough(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, root: RootField
) -> None:
    for scopes in ([REQUIRED_SCOPES[root.id]], ["admin"]):
        token = await add_token(engine, account.id, scopes)
        body = await graphql(client, token, operation(root, full=False))
        assert "errors" not in body, (scopes, body)


# --- token lifecycle -----------------------------------------------------------------------


async def test_tokens_are_long_random_and_distinct(engine: AsyncEngine) -> None:
    account = await create_test_account(engine)
    tokens = {await add_token(engine, account.id, ["reports:read"]) for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert token.startswith(accounts.TOKEN_PREFIX)
        secret = token.removeprefix(accounts.TOKEN_PREFIX)
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32  # 256 random bits


async def test_last_used_at_is_recorded_at_most_once_a_minute(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    async def last_used() -> int | None:
        async with transaction(engine) as session:
            row = await session.get(ApiToken, account.token_id)
            assert row is not None
            return row.last_used_at

    assert await last_used() is None
    before = int(time.time())
    await graphql(client, account, "{ __typename }")
    first = await recorded(last_used)
    assert before <= first <= int(time.time())
    updates: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await graphql(client, account, "{ __typename }")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert updates == []
    assert await last_used() == first


async def recorded(last_used: Callable[[], Awaitable[int | None]]) -> int:
    """`last_used_at` once the writer has recorded it (it does so after the answer)."""
    for _ in range(200):
        value = await last_used()
        if value is not None:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("last_used_at was never recorded")


async def test_recording_token_use_never_holds_the_request(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Another transaction holds the token row (on SQLite the write lock, as the ingestion
    writer does through a long batch): the request is answered at once, and last_used_at is
    recorded once the lock is gone. Before, the request waited for the lock (on SQLite up to
    the 30 s busy timeout, often seconds while ingestion kept the database busy)."""

    async def last_used() -> int | None:
        async with transaction(engine) as session:
            row = await session.get(ApiToken, account.token_id)
            assert row is not None
            return row.last_used_at

    async with transaction(engine) as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == account.token_id).values(scopes=ApiToken.scopes)  # type: ignore[arg-type]
        )
        answer = await asyncio.wait_for(graphql(client, account, "{ __typename }"), 3)
        assert answer == {"data": {"__typename": "Query"}}
    assert await recorded(last_used) > 0


async def test_a_revoked_token_stops_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    assert (await graphql(client, account, "{ __typename }"))["data"] == {"__typename": "Query"}
    async with transaction(engine) as session:
        await accounts.revoke_token(session, account.token_id)
    response = await client.post(
        "/graphql", json={"query": "{ agents { id } }"}, headers=account.headers
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- query limits --------------------------------------------------------------------------


async def assert_refused_without_sql(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    account: TestAccount,
    query: str,
    code: str = "QUERY_TOO_COMPLEX",
    variables: dict[str, Any] | None = None,
    counted: bool = False,
) -> dict[str, Any]:
    """Refused with `code`, without a statement (`counted`: but the one that counts the
    account's agents, tags and buttons, which the cost of their lists depends on)."""
    await graphql(client, account, "{ __typename }")  # pool warmed, token's last use recorded
    # CPU time of this process (client and server alike), not wall time: other processes
    # sharing the machine must not make the test flaky; nor a full collection of the whole
    # suite's heap by the cycle collector (seen at 1.7 s): collected before, paused meanwhile.
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        with counting_statements(engine, naming_not="api_token") as statements:
            body = await graphql(client, account, query, variables)
        elapsed = time.process_time() - started
    finally:
        gc.enable()
    assert body["data"] is None, body
    assert code in codes(body), body
    if counted:
        [statement] = statements
        assert statement.startswith("SELECT (SELECT count(*)"), statement
    else:
        assert statements == []
    assert elapsed < 1.0, f"refusing took {elapsed:.2f} s of CPU"
    return body


async def test_a_deep_query_is_refused_before_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    path = "tags { id }"
    for _ in range(12):
        path = f"contact {{ {path} }}"  # deeper than any valid path: depth counts first
    body = await assert_refused_without_sql(
        client, engine, account, f'{{ conversation(id: "1") {{ {path} }} }}'
    )
    assert "exceeds maximum operation depth of 10" in body["errors"][0]["message"]


async def test_a_valid_query_text_is_validated_once(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    account: TestAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import strawberry.schema.schema as strawberry_schema

    calls: list[str] = []
    validate = strawberry_schema.validate_document

    def counted(schema: Any, document: Any, rules: Any) -> Any:
        calls.append(document.loc.source.body)
        return validate(schema, document, rules)

    monkeypatch.setattr(strawberry_schema, "validate_document", counted)
    # Texts of their own: apps with the same settings share a schema and what it remembers.
    unique = uuid.uuid4().hex
    valid = f"query ValidatedOnce{unique} {{ agents {{ email }} }}"
    for _ in range(3):
        assert "errors" not in await graphql(client, account, valid)
    assert calls == [valid]
    # Only passes are remembered: a refused text is checked, and refused, every time.
    invalid = "query NeverValid { agents { nickname } }"
    for _ in range(2):
        body = await graphql(client, account, invalid)
        assert "Cannot query field 'nickname'" in body["errors"][0]["message"]
    assert calls == [valid, invalid, invalid]
    # A remembered text still has its cost estimated for each request's variables: every
    # agent's daily figures twenty times are cheap for three days, too costly for a year.
    metrics = "conversations messages avgFirstResponseSeconds avgRating ratedConversations"
    report = (
        f"agentReport(filter: $f) {{ rows {{ agent {{ email }} metrics {{ {metrics} }} "
        f"daily {{ start metrics {{ {metrics} }} }} }} }}"
    )
    aliased = " ".join(f"r{i}: {report}" for i in range(20))
    costly = f"query CostOnce{unique}($f: ReportFilter!) {{ {aliased} }}"
    days = {"f": {"from": "2025-01-01", "to": "2025-01-03"}}
    assert "errors" not in await graphql(client, account, costly, days)
    year = {"f": {"from": "2025-01-01", "to": "2025-12-31"}}
    await ten_agents(engine, account)
    body = await assert_refused_without_sql(
        client, engine, account, costly, variables=year, counted=True
    )
    assert body["errors"][0]["message"].startswith("The query would resolve about ")
    assert calls.count(costly) == 1


async def test_depth_limit_is_a_setting(database_url: str) -> None:
    query = '{ conversation(id: "1") { contact { tags { id } } } }'  # depth 3
    async with serving(make_settings(database_url, max_query_depth=2)) as (app, http):
        account = await create_test_account(app.state.engine)
        body = await assert_refused_without_sql(http, app.state.engine, account, query)
        assert codes(body) == ["QUERY_TOO_COMPLEX"]  # the valid query is refused for depth only
    async with serving(make_settings(database_url, max_query_depth=3)) as (app, http):
        account = await create_test_account(app.state.engine)
        assert await graphql(http, account, query) == {"data": {"conversation": None}}


async def test_an_alias_bomb_is_refused_before_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    aliases = " ".join(f"a{i}: agents {{ id }}" for i in range(21))
    body = await assert_refused_without_sql(client, engine, account, f"{{ {aliases} }}")
    assert body["errors"][0]["message"] == "21 aliases found. Allowed: 20"
    twenty = " ".join(f"a{i}: tags {{ id }}" for i in range(20))
    assert "errors" not in await graphql(client, account, f"{{ {twenty} }}")


async def test_a_huge_token_count_is_refused_before_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    names = " ".join(["email"] * 5000)
    body = await assert_refused_without_sql(client, engine, account, f"{{ agents {{ {names} }} }}")
    assert "more than 5000 tokens" in body["errors"][0]["message"]


async def test_a_repeated_field_is_refused_before_validation(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    # No alias and few tokens, but graphql-core would compare the copies pairwise.
    body = await assert_refused_without_sql(
        client, engine, account, "{ " + "agents { id } " * 500 + "}"
    )
    assert body["errors"][0]["message"].startswith("The field 'agents' is selected 500 times")


async def test_a_fragment_bomb_is_refused_before_validation(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    # 2^25 fields in 300 tokens: each fragment spreads the next one under two fields. The
    # shape is checked before validation, so even this ill-typed document is measured first.
    fragments = " ".join(
        f"fragment F{i} on Query {{ a{i}: agents {{ ...F{i + 1} }} b{i}: tags {{ ...F{i + 1} }} }}"
        for i in range(25)
    )
    query = f"{{ ...F0 }} {fragments} fragment F25 on Query {{ __typename }}"
    body = await assert_refused_without_sql(client, engine, account, query)
    assert body["errors"][0]["message"] == (
        "The query expands to more than 10000 fields once its fragments are spread."
    )
    doubling = " ".join(f"fragment D{i} on Agent {{ ...D{i + 1} ...D{i + 1} }}" for i in range(40))
    query = f"{{ agents {{ ...D0 }} }} {doubling} fragment D40 on Agent {{ id }}"
    body = await assert_refused_without_sql(client, engine, account, query)
    assert "selected" in body["errors"][0]["message"]


async def test_a_fragment_chain_is_refused_before_validation(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    chain = " ".join(f"fragment C{i} on Query {{ ...C{i + 1} }}" for i in range(300))
    query = f"{{ ...C0 }} {chain} fragment C300 on Query {{ agents {{ id }} }}"
    body = await assert_refused_without_sql(client, engine, account, query)
    assert "levels deep" in body["errors"][0]["message"]


async def test_a_huge_first_is_refused_before_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    query = """query ($first: Int) {
      conversationDetails(filter: {from: "2026-01-01", to: "2026-01-31"}, first: $first) {
        edges { node { id contact { phone tags { name } } tags { name } agent { email } } }
      }
    }"""
    body = await assert_refused_without_sql(
        client, engine, account, query, code="BAD_USER_INPUT", variables={"first": 100000}
    )
    assert body["errors"][0]["extensions"]["field"] == "first"


async def ten_agents(engine: AsyncEngine, account: TestAccount) -> None:
    async with building(engine, account.id) as make:
        for n in range(10):
            await make.agent(f"agent{n}@acme.test", f"Agent {n}")


async def test_too_costly_a_query_is_refused_before_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    # Every agent's daily figures over a year, twenty times: about 20 x 47,600 values.
    year = '{from: "2025-01-01", to: "2025-12-31"}'
    metrics = "conversations messages avgFirstResponseSeconds avgRating ratedConversations"
    report = (
        f"agentReport(filter: {year}) {{ rows {{ agent {{ email }} metrics {{ {metrics} }} "
        f"daily {{ start metrics {{ {metrics} }} }} }} }}"
    )
    aliased = " ".join(f"r{i}: {report}" for i in range(20))
    # Without agents, it costs nothing (no rows): the estimate uses the account's real count.
    assert "errors" not in await graphql(client, account, f"{{ {aliased} }}")
    await ten_agents(engine, account)
    body = await assert_refused_without_sql(
        client, engine, account, f"{{ {aliased} }}", counted=True
    )
    assert body["errors"][0]["message"].startswith("The query would resolve about ")
    # One such report, and the whole year dashboard in one query, stay within the bound.
    assert "errors" not in await graphql(client, account, f"{{ {report} }}")


async def test_the_cost_of_report_rows_is_the_accounts_real_count_of_them(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """A year of every tag's daily figures: with 383 tags, 27.6 MB (1.26 million values) were
    answered in 10.5 s, the estimate assuming 10 rows (issue 12, item 2)."""
    metrics = (
        "conversations messages inboundMessages outboundMessages distinctContacts "
        "closedConversations avgFirstResponseSeconds avgRating"
    )
    query = (
        '{ tagReport(filter: {from: "2025-01-01", to: "2025-12-31"}) '
        f"{{ rows {{ tag {{ name }} daily {{ start metrics {{ {metrics} }} }} }} }} }}"
    )
    async with building(engine, account.id) as make:
        for n in range(5):
            await make.tag("conversation", f"Tag {n}")
    assert await graphql(client, account, query) == {"data": {"tagReport": {"rows": []}}}
    async with building(engine, account.id) as make:
        for n in range(5, 383):
            await make.tag("conversation", f"Tag {n}")
    body = await assert_refused_without_sql(client, engine, account, query, counted=True)
    # tagReport 1 + rows (1 + 383 x (tag (1 + name) + daily (1 + 365 x (start + 1 + 8))))
    assert body["errors"][0]["message"].startswith("The query would resolve about 1399101 ")


async def test_execution_stops_once_it_has_resolved_more_values_than_the_bound(
    database_url: str,
) -> None:
    """A conversation's tags are costed at a nominal 10 (they can be 100): what the estimate
    let through is stopped while it executes, once the values produced pass the bound."""
    query = """{ conversationDetails(filter: {from: "2026-01-01", to: "2026-01-31"}, first: 20) {
      edges { node { id tags { id name } } } } }"""
    async with serving(make_settings(database_url, max_query_cost=1000)) as (app, http):
        account = await create_test_account(app.state.engine)
        async with building(app.state.engine, account.id) as make:
            contact = await make.contact("+33612345678", "Ana")
            tags = [f"Tag {n}" for n in range(60)]
            for day in range(1, 11):
                await make.conversation(
                    contact, [inbound(at(f"2026-01-{day:02d} 10:00"))], tags=tags
                )
        body = await graphql(http, account, query)
        assert body["data"] is None
        assert codes(body) == ["QUERY_TOO_COMPLEX"]
        assert "resolved more than 1000 values" in body["errors"][0]["message"]
        # Within the bound, the same query is answered (3 conversations, 60 tags each).
        small = query.replace("first: 20", "first: 3")
        page = (await graphql(http, account, small))["data"]["conversationDetails"]
        assert [len(edge["node"]["tags"]) for edge in page["edges"]] == [60, 60, 60]


async def test_a_large_answer_lets_other_requests_through_while_it_executes(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """About 160,000 values, within the bound: graphql-core completed them without letting the
    event loop run (a 27 MB answer held /healthz 9.5 s); a long list now gives the loop a turn
    about every 50 ms. Measured as the longest the loop went without a turn."""
    async with engine.begin() as connection:
        await connection.execute(
            Agent.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"account_id": account.id, "email": f"a{n:05d}@acme.test", "name": f"A {n}"}
                for n in range(40_000)
            ],
        )
    longest, running = 0.0, True

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0)
            moment = time.perf_counter()
            longest, last = max(longest, moment - last), moment

    # The cycle collector paused meanwhile, as `wareports serve` keeps it from full passes over
    # the app (api.app.create_served_app): a collection of the whole suite's heap is a stall of
    # the test process, not of the execution measured (seen on PostgreSQL).
    gc.collect()
    gc.disable()
    try:
        ticking = asyncio.create_task(ticker())
        started = time.perf_counter()
        body = await graphql(client, account, "{ agents { id email name } }")
        elapsed = time.perf_counter() - started
        running = False
        await ticking
    finally:
        gc.enable()
    assert len(body["data"]["agents"]) == 40_000
    # Relative to the whole answer, so that a slower machine does not matter: it was about two
    # thirds of it (the completion of every value in one pass). Now the longest turn is the
    # resolver building its 40,000 rows: about a tenth on SQLite, and on PostgreSQL 0.08 s of
    # 0.28 s (0.29) since the answer is encoded by orjson (0.26 with the slower encoder before,
    # a larger whole); under CI's load it measured 0.40 once. Half still tells the two apart.
    assert longest < elapsed * 0.5, f"the loop waited {longest:.2f} s of {elapsed:.2f} s"


async def test_cost_bound_is_a_setting(database_url: str) -> None:
    query = '{ a: conversation(id: "1") { id contact { id tags { id name } } tags { id name } } }'
    # conversation 1 + (id 1 + contact (1 + 1 + tags (1 + 10 x 2)) + tags (1 + 10 x 2)) = 46
    async with serving(make_settings(database_url, max_query_cost=100)) as (app, http):
        account = await create_test_account(app.state.engine)
        assert await graphql(http, account, query) == {"data": {"a": None}}
        three = query[1:-1] + query[1:-1].replace("a:", "b:") + query[1:-1].replace("a:", "c:")
        body = await assert_refused_without_sql(http, app.state.engine, account, f"{{{three}}}")
        assert body["errors"][0]["message"].startswith("The query would resolve about 138 ")


async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    """A body sent without Content-Length (chunked): its size is known only while reading."""
    for part in parts:
        yield part


async def test_a_huge_body_is_refused_before_any_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await graphql(client, account, "{ __typename }")
    padding = " " * (1024 * 1024)
    events: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        events.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        response = await client.post(
            "/graphql",
            content=f'{{"query": "{{ agents {{ id }} }}{padding}"}}',
            headers={**account.headers, "Content-Type": "application/json"},
        )
        streamed = await client.post(
            "/graphql",
            content=chunks([b'{"query": "', b" " * (600 * 1024), b" " * (600 * 1024), b'"}']),
            headers={**account.headers, "Content-Type": "application/json"},
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    for refused in (response, streamed):
        assert refused.status_code == 413
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert events == []  # not even the token look-up


# --- errors --------------------------------------------------------------------------------


async def test_an_unexpected_failure_is_masked_with_a_request_id(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    account: TestAccount,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with engine.begin() as connection:
        await connection.exec_driver_sql("ALTER TABLE agent RENAME TO agent_gone")
    with caplog.at_level(logging.ERROR, logger="wareports.graphql"):
        body = await graphql(client, account, "{ agents { email } tags { name } }")
    error = body["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert re.fullmatch(r"[0-9a-zA-Z-]{8,}", error["extensions"]["requestId"])
    assert set(error["extensions"]) == {"code", "requestId"}
    assert "agent" not in str(body).replace("agents", "")  # no table name, no SQL
    assert body["data"] is None
    logged = [record for record in caplog.records if record.name == "wareports.graphql"]
    assert logged and error["extensions"]["requestId"] in logged[0].getMessage()
    assert logged[0].exc_info is not None  # the detail is in the log only


# --- introspection and GraphiQL ------------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_introspection_and_graphiql_are_on_by_default(
    client: httpx.AsyncClient, account: TestAccount
) -> None:
    body = await graphql(client, account, INTROSPECTION)
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200


async def test_introspection_and_graphiql_can_be_turned_off(database_url: str) -> None:
    async with serving(make_settings(database_url, graphiql=False)) as (app, http):
        account = await create_test_account(app.state.engine)
        body = await graphql(http, account, INTROSPECTION)
        assert body["data"] is None
        assert "introspection has been disabled" in body["errors"][0]["message"]
        body = await graphql(http, account, '{ __type(name: "Query") { name } }')
        assert body["data"] is None
        # __typename is not introspection of the schema: clients (Apollo) rely on it.
        assert await graphql(http, account, "{ __typename }") == {"data": {"__typename": "Query"}}
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert coded(page) == "NOT_FOUND"
        # Nor do errors suggest names: "Did you mean 'agents'?" would give the schema away.
        body = await graphql(http, account, "{ agentz { id } }")
        assert body["errors"][0]["message"] == "Cannot query field 'agentz' on type 'Query'."
    async with serving(make_settings(database_url)) as (app, http):
        account = await create_test_account(app.state.engine)
        body = await graphql(http, account, "{ agentz { id } }")
        assert "Did you mean 'agents'?" in body["errors"][0]["message"]


# --- request bodies ------------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"[]", "application/json", 400, "batched", id="empty-batch"),
    pytest.param(
        b'[{"query": "{ agents { id } }"}, {"query": "{ tags { id } }"}]',
        "application/json",
        400,
        "batched",
        id="batch",
    ),
    pytest.param(b'"{ agents { id } }"', "application/json", 400, "JSON object", id="string"),
    pytest.param(b"42", "application/json", 400, "JSON object", id="number"),
    pytest.param(b"{not json", "application/json", 400, "not valid JSON", id="not-json"),
    pytest.param(b'{"query": "\xff\xfe"}', "application/json", 400, "not valid JSON", id="latin"),
    pytest.param(b"[" * 100_000, "application/json", 400, "not valid JSON", id="deep-json"),
    pytest.param(b'{"query": 42}', "application/json", 400, "`query`", id="query-number"),
    pytest.param(
        b'{"query": "{ agents { id } }", "variables": [1]}',
        "application/json",
        400,
        "`variables`",
        id="variables-list",
    ),
    pytest.param(
        b'{"query": "{ agents { id } }", "operationName": {}}',
        "application/json",
        400,
        "`operationName`",
        id="operation-object",
    ),
    pytest.param(b"{ agents { id } }", "application/graphql", 415, "application/json", id="gql"),
    pytest.param(b"query={agents{id}}", "application/x-www-form-urlencoded", 415, "", id="form"),
    pytest.param(b'{"query": "{ agents { id } }"}', "", 415, "", id="no-content-type"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "message"), MALFORMED)
async def test_malformed_requests_get_a_clear_4xx(
    client: httpx.AsyncClient,
    account: TestAccount,
    body: bytes,
    content_type: str,
    status: int,
    message: str,
) -> None:
    headers = {**account.headers, "Content-Type": content_type}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert message in error["message"]


def coded(response: httpx.Response) -> str:
    """The code of a GraphQL-shaped error answer (one error, `extensions.code`)."""
    assert response.headers["content-type"] == "application/json", response.text
    (error,) = response.json()["errors"]
    assert error["message"]
    return str(error["extensions"]["code"])


async def test_every_graphql_refusal_is_a_graphql_error_with_a_code(
    client: httpx.AsyncClient, account: TestAccount
) -> None:
    """Strawberry's own refusals were plain text (issue 12, item 10)."""
    for body in (
        {"query": None},
        {},
        {"query": "{ agents { id } }", "operationName": "Missing"},
    ):
        response = await client.post("/graphql", json=body, headers=account.headers)
        assert response.status_code == 400, body
        assert coded(response) == "BAD_REQUEST", body
    for method in ("PUT", "DELETE", "PATCH"):
        response = await client.request(method, "/graphql", headers=account.headers)
        assert response.status_code == 405
        assert coded(response) == "METHOD_NOT_ALLOWED"
        assert response.headers["allow"] == "GET, HEAD, POST"


async def test_bad_get_parameters_get_a_400(
    client: httpx.AsyncClient, account: TestAccount
) -> None:
    for params in (
        {"query": "{ agents { id } }", "variables": "[" * 5000},
        {"query": "{ agents { id } }", "variables": "{bad"},
        {"query": "{ agents { id } }", "variables": "[1]"},
        {"query": "mutation { __typename }"},
        {"query": "{ agents { id } }", "operationName": "Missing"},
    ):
        response = await client.get("/graphql", params=params, headers=account.headers)
        assert response.status_code == 400, (params, response.text)
        assert coded(response) == "BAD_REQUEST", params
    response = await client.get(
        "/graphql", params={"query": "{ agents { id } }"}, headers=account.headers
    )
    assert response.json() == {"data": {"agents": []}}


# --- CORS ----------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


async def test_no_cross_origin_access_by_default(
    client: httpx.AsyncClient, account: TestAccount
) -> None:
    preflight = await client.options("/graphql", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    response = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={**account.headers, "Origin": "https://app.example.com"},
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_configured_origins_get_cors_headers(database_url: str) -> None:
    settings = make_settings(
        database_url, cors_origins="https://app.example.com, https://admin.example.com"
    )
    assert settings.cors_origins == ["https://app.example.com", "https://admin.example.com"]
    async with serving(settings) as (app, http):
        account = await create_test_account(app.state.engine)
        preflight = await http.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "access-control-allow-credentials" not in preflight.headers
        other = await http.options(
            "/graphql", headers={**PREFLIGHT, "Origin": "https://evil.example.net"}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        origin = {"Origin": "https://admin.example.com"}
        response = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={**account.headers, **origin}
        )
        assert response.headers["access-control-allow-origin"] == "https://admin.example.com"
        refused = await http.post("/graphql", json={"query": "{ __typename }"}, headers=origin)
        assert refused.status_code == 401  # the browser can read why
        assert refused.headers["access-control-allow-origin"] == "https://admin.example.com"
        assert "retry-after" in response.headers["access-control-expose-headers"].lower()


# --- rate limits ---------------------------------------------------------------------------


def redis_url_or_skip(storage: str) -> str | None:
    if storage == "memory":
        return None
    if TEST_REDIS_URL is None:
        pytest.skip("set WAREPORTS_TEST_REDIS_URL to test the Redis storage")
    return TEST_REDIS_URL


@pytest.mark.parametrize("storage", STORAGES)
async def test_rate_limit_per_token(database_url: str, storage: str) -> None:
    redis_url = redis_url_or_skip(storage)
    settings = make_settings(database_url, rate_limit="3/minute", redis_url=redis_url)
    async with serving(settings) as (app, http):
        first = await create_test_account(app.state.engine)
        second = await add_token_of(app.state.engine, first.id, ["reports:read"])
        other = await create_test_account(app.state.engine, name="Other")
        limiter: RateLimiter = app.state.rate_limiter
        tokens = (first, second, other)
        for token in tokens:
            await limiter.reset(str(token.token_id))  # Redis may hold earlier tests' hits
        for _ in range(3):
            assert (await graphql(http, first, "{ agents { id } }")) == {"data": {"agents": []}}
        started = time.time()
        response = await http.post(
            "/graphql", json={"query": "{ agents { id } }"}, headers=first.headers
        )
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60 and retry_after >= 60 - (time.time() - started) - 2
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == retry_after
        # Another token of the same account and a token of another account are unaffected.
        assert (await graphql(http, second, "{ __typename }"))["data"] is not None
        assert (await graphql(http, other, "{ agents { id } }")) == {"data": {"agents": []}}
        for token in tokens:
            await limiter.reset(str(token.token_id))


async def test_rate_limit_storage_outage_lets_requests_through(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, rate_limit="1/minute", redis_url="redis://127.0.0.1:1/0")
    async with serving(settings) as (app, http):
        account = await create_test_account(app.state.engine)
        with caplog.at_level(logging.ERROR, logger="wareports.ratelimit"):
            for _ in range(2):
                assert await graphql(http, account, "{ agents { id } }") == {"data": {"agents": []}}
        outages = [r for r in caplog.records if "rate-limit storage unavailable" in r.getMessage()]
        assert len(outages) == 1  # then the limiter stands aside for a while


def test_rate_limit_setting_is_validated() -> None:
    assert Settings(rate_limit="10/second;600/minute").rate_limit == "10/second;600/minute"
    with pytest.raises(ValueError, match="not a rate limit"):
        Settings(rate_limit="a lot")


# --- /v1/events ----------------------------------------------------------------------------


def agent_event(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "type": "agent.upserted", "at": 1_767_225_600, "email": "a@b.io"}


async def test_events_need_the_ingest_scope(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    reader = await add_token(engine, account.id, ["reports:read", "reports:export"])
    with counting_statements(engine, naming_not="api_token") as statements:
        response = await client.post(
            "/v1/events", json={"events": [agent_event("e1")]}, headers=bearer(reader)
        )
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "FORBIDDEN" and error["scope"] == "ingest:write"
    assert "ingest:write" in error["message"]
    assert statements == []  # nothing stored, nothing read
    writer = await add_token(engine, account.id, ["ingest:write"])
    response = await client.post(
        "/v1/events", json={"events": [agent_event("e1")]}, headers=bearer(writer)
    )
    assert response.status_code == 200, response.text


async def test_events_deeply_nested_json_is_a_400(
    client: httpx.AsyncClient, account: TestAccount
) -> None:
    response = await client.post(
        "/v1/events",
        content=b'{"events": ' + b"[" * 100_000,
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("storage", STORAGES)
async def test_events_are_rate_limited_per_token(database_url: str, storage: str) -> None:
    redis_url = redis_url_or_skip(storage)
    settings = make_settings(database_url, rate_limit="2/minute", redis_url=redis_url)
    async with serving(settings) as (app, http):
        first = await create_test_account(app.state.engine, scopes=["ingest:write"])
        second = await add_token_of(app.state.engine, first.id, ["ingest:write"])
        limiter: RateLimiter = app.state.rate_limiter
        for token in (first, second):
            await limiter.reset(str(token.token_id))
        for index in range(2):
            response = await http.post(
                "/v1/events", json={"events": [agent_event(f"e{index}")]}, headers=first.headers
            )
            assert response.status_code == 200, response.text
        response = await http.post(
            "/v1/events", json={"events": [agent_event("e9")]}, headers=first.headers
        )
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        # /v1/events' own error shape, as for its 401, 403, 400 and 503 (not GraphQL's).
        (error,) = response.json()["errors"]
        assert (error["code"], error["retryAfter"]) == ("RATE_LIMITED", retry_after)
        assert "extensions" not in error
        response = await http.post(
            "/v1/events", json={"events": [agent_event("e9")]}, headers=second.headers
        )
        assert response.status_code == 200
        assert response.json() == {"stored": ["e9"], "duplicates": []}
        for token in (first, second):
            await limiter.reset(str(token.token_id))


async def test_a_conversation_id_in_other_digits_or_out_of_range_finds_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    from tests.ingest.support import conversations, post_events

    started = {"id": "s1", "type": "conversation.started", "at": 1_700_000_000}
    started |= {"phone": "+33612345678", "source": "FLOW"}
    assert (await post_events(client, account, [started])).status_code == 200
    [row] = await conversations(engine)
    arabic_indic = str(row.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    query = "query One($id: ID!) { conversation(id: $id) { id } }"
    found = await graphql(client, account, query, {"id": str(row.id)})
    assert found == {"data": {"conversation": {"id": str(row.id)}}}
    for spelled in (arabic_indic, "²", "2147483648", "99999999999999999999"):
        body = await graphql(client, account, query, {"id": spelled})
        assert body == {"data": {"conversation": None}}, spelled


async def test_the_heatmap_is_costed_at_its_168_cells(database_url: str) -> None:
    query = '{ summaryReport(filter: {from: "2026-03-01", to: "2026-03-02"}) { heatmap { hour } } }'
    # summaryReport 1 + (heatmap 1 + 168 x hour 1) = 170
    async with serving(make_settings(database_url, max_query_cost=169)) as (app, http):
        account = await create_test_account(app.state.engine)
        body = await assert_refused_without_sql(http, app.state.engine, account, query)
        assert body["errors"][0]["message"].startswith("The query would resolve about 170 ")
    # (Execution counts each cell and its field: 336, within a bound the estimate passes.)
    async with serving(make_settings(database_url, max_query_cost=336)) as (app, http):
        account = await create_test_account(app.state.engine)
        body = await graphql(http, account, query)
        assert len(body["data"]["summaryReport"]["heatmap"]) == 168
