"""Group commit: one writer per process folds waiting ingestion requests into one transaction.

Through HTTP: requests waiting together are stored in one transaction and each answered after
its commit; a member that fails gets its own error while the others commit; a full queue
answers 503 with Retry-After and stores nothing; `/metrics` shows the queue and the folds.
Property: random histories folded in random groupings leave the same conversations, outcomes and
reports as the same history applied one request at a time, and aggregates equal to a rebuild.
"""

import asyncio
import itertools
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from api.app import create_app
from ingest import aggregates as maintenance
from ingest import autoclose, buttons, conversations, events, whatsapp
from ingest.contacts import lock_contacts
from ingest.conversations import NewMessage
from ingest.transactions import write
from ingest.writer import Bulk, GroupWriter
from models.db import session_factory, transaction
from tests.conftest import TestAccount, create_test_account, graphql, make_settings
from tests.ingest.support import (
    add_channel,
    change,
    count_rows,
    echoes,
    figures,
    inbound,
    post_events,
    post_webhook,
    status_payload,
    text_echo,
    wait_for_depth,
    writer_of,
)
from tests.ingest.support import conversations as conversation_rows
from tests.ingest.test_aggregates import (
    AGENTS,
    BOUNDED,
    CONTACT,
    CONTACTS,
    CONVERSATION_EVENT_STEP,
    HOUR,
    NOW,
    REPORTS,
    STATUSES,
    STEP,
    TAGS,
    ZONE,
    Step,
    aggregate_rows,
    event_of,
    report_filters,
)
from tests.service.test_ops import engine_rows

T = NOW - 2 * HOUR
Work = Callable[[AsyncSession], Awaitable[Any]]


def metric(text: str, name: str) -> float:
    """The value of one sample line of the Prometheus text format (0 when absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_waiting_requests_share_one_transaction_and_are_answered_after_it(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    writer = writer_of(app)
    folds: list[tuple[int, int, str]] = []
    writer.on_fold = lambda fold: folds.append((fold.units, fold.items, fold.outcome))
    async with writer.held():
        posts = [
            asyncio.create_task(post_webhook(client, inbound(f"w{n}", f"3361000000{n % 3}", T + n)))
            for n in range(12)
        ]
        await wait_for_depth(writer, 12)
        assert not any(post.done() for post in posts)  # nothing answered before its commit
        assert (await count_rows(engine))["message"] == 0
    answers = await asyncio.gather(*posts)
    assert [answer.json() for answer in answers] == [
        {"messages": 1, "duplicates": 0, "statuses": 0}
    ] * 12
    assert folds == [(12, 12, "committed")]
    # Read-your-writes: what was acknowledged is in the reports at once.
    day = f'{{from: "{_day_of(T)}", to: "{_day_of(T + 11)}"}}'
    body = await graphql(
        client, account, f"{{ summaryReport(filter: {day}) {{ totals {{ messages }} }} }}"
    )
    assert body["data"]["summaryReport"]["totals"]["messages"] == 12
    assert len(await conversation_rows(engine)) == 3


async def test_a_failure_counting_a_fold_never_fails_what_it_committed(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """The metrics' callback runs after the commit: if it raises, the requests it counted are
    still answered 200 (they were answered 500, their data stored)."""
    await add_channel(engine, account.id)
    writer = writer_of(app)

    def broken(fold: Any) -> None:
        raise RuntimeError("metrics unavailable")

    writer.on_fold = broken
    async with writer.held():
        posts = [
            asyncio.create_task(post_webhook(client, inbound(f"m{n}", f"3361000000{n}", T + n)))
            for n in range(3)
        ]
        await wait_for_depth(writer, 3)
    answers = await asyncio.gather(*posts)
    alone = await post_webhook(client, inbound("m3", "33610000003", T + 3))
    assert [answer.status_code for answer in [*answers, alone]] == [200] * 4
    assert (await count_rows(engine))["message"] == 4


async def test_under_load_the_writer_waits_briefly_for_the_next_group_never_for_one_client(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """`commit_delay`: after a group of several requests, the next transaction waits (up to the
    delay) until as many are queued, so that the clients just answered share it; a client
    alone is folded at once."""
    await add_channel(engine, account.id)
    writer = writer_of(app)
    # The app's first write is not timed: it may wait for the startup's compiling (a second on
    # a busy machine), which is not the delay.
    assert (await post_webhook(client, inbound("first", "33610000008", T))).status_code == 200
    writer.commit_delay = 2.0  # long enough to tell apart on any machine
    folds: list[int] = []
    writer.on_fold = lambda fold: folds.append(fold.units)
    began = time.monotonic()
    assert (await post_webhook(client, inbound("lone", "33610000009", T))).status_code == 200
    assert time.monotonic() - began < 1.5  # not held for the delay
    async with writer.held():
        posts = [
            asyncio.create_task(post_webhook(client, inbound(f"a{n}", f"3361000000{n}", T + n)))
            for n in range(6)
        ]
        await wait_for_depth(writer, 6)
    await asyncio.gather(*posts)
    # Their next requests, one first, then the others a moment later: one transaction.
    first = asyncio.create_task(post_webhook(client, inbound("b0", "33610000000", T + 10)))
    await asyncio.sleep(0.05)
    posts = [
        asyncio.create_task(post_webhook(client, inbound(f"b{n}", f"3361000000{n}", T + 10 + n)))
        for n in range(1, 6)
    ]
    answers = await asyncio.gather(first, *posts)
    assert {answer.status_code for answer in answers} == {200}
    assert folds == [1, 6, 6]


async def test_a_failing_member_gets_its_own_error_and_the_others_commit(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    writer = writer_of(app)
    folds: list[tuple[int, str]] = []
    writer.on_fold = lambda fold: folds.append((fold.units, fold.outcome))
    good = {"type": "message.sent", "phone": "+33612345678", "agentEmail": "ana@acme.test"}
    async with writer.held():
        first = asyncio.create_task(post_webhook(client, inbound("w1", "33612345678", T)))
        await wait_for_depth(writer, 1)
        # Valid JSON, refused only when applied: that conversation does not exist.
        bad = asyncio.create_task(
            post_events(
                client,
                account,
                [
                    {"id": "ok-1", "at": T + 5, "messageId": "out-1", **good},
                    {"id": "bad", "type": "conversation.closed", "at": T + 9}
                    | {"conversationId": "999999"},
                ],
            )
        )
        await wait_for_depth(writer, 3)
        last = asyncio.create_task(
            post_events(
                client, account, [{"id": "ok-2", "at": T + 7, "messageId": "out-2", **good}]
            )
        )
        await wait_for_depth(writer, 4)
    answers = await asyncio.gather(first, bad, last)
    assert [answer.status_code for answer in answers] == [200, 422, 200]
    assert answers[1].json()["errors"][0]["index"] == 1
    assert answers[2].json() == {"stored": ["ok-2"], "duplicates": []}
    assert folds == [(3, "split")]
    counts = await count_rows(engine)
    assert (counts["message"], counts["ingested_event"]) == (2, 1)  # nothing of the bad batch
    (conversation,) = await conversation_rows(engine)
    assert (conversation.message_count, conversation.first_response_at) == (2, T + 7)


@pytest.fixture
async def small_queue_app(database_url: str) -> Any:
    application = create_app(make_settings(database_url, ingest_queue=2, metrics="open"))
    async with application.router.lifespan_context(application):
        yield application


async def test_a_full_queue_answers_503_with_retry_after_and_stores_nothing(
    small_queue_app: Starlette,
) -> None:
    app = small_queue_app
    engine: AsyncEngine = app.state.engine
    account = await create_test_account(engine)
    await add_channel(engine, account.id)
    writer = writer_of(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        async with writer.held():
            waiting = [
                asyncio.create_task(post_webhook(client, inbound(f"w{n}", "33612345678", T + n)))
                for n in range(2)
            ]
            await wait_for_depth(writer, 2)
            refused = await post_webhook(client, inbound("w-refused", "33612345678", T + 5))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["errors"][0]["code"] == "BUSY"
            events_refused = await post_events(
                client,
                account,
                [{"id": "e1", "type": "contact.upserted", "at": T, "phone": "+33612345678"}],
            )
            assert events_refused.status_code == 503
            scraped = (await client.get("/metrics")).text
            assert metric(scraped, "wareports_ingest_queue_items") == 2
            assert metric(scraped, "wareports_ingest_refused_busy_total") == 2
        assert [(await answer).status_code for answer in waiting] == [200, 200]
        counts = await count_rows(engine)
        assert (counts["message"], counts["ingested_event"]) == (2, 0)
        # Retried once the queue has room, as Meta does: stored.
        retried = await post_webhook(client, inbound("w-refused", "33612345678", T + 5))
        assert retried.json()["messages"] == 1
        scraped = (await client.get("/metrics")).text
        assert metric(scraped, "wareports_ingest_queue_items") == 0
        assert metric(scraped, "wareports_ingest_transaction_items_count") == 2
        assert metric(scraped, "wareports_ingest_transaction_items_sum") == 3
        assert metric(scraped, 'wareports_ingest_fold_seconds_count{outcome="committed"}') == 2


def _day_of(instant: int) -> str:
    return datetime.fromtimestamp(instant, UTC).date().isoformat()


# --- the property: grouped == one at a time ---------------------------------------------------

# Messages of the last three hours: conversations still open, so that most deliveries fold in
# bulk (appended in order, or starting a conversation), beside the general path's cases.
RECENT_INBOUND = st.builds(
    Step, st.just("inbound"), CONTACT, st.integers(-170, 0).map(lambda m: NOW + 60 * m)
)
OTHER_STEPS = st.one_of(
    STEP,
    # An edit (tag 0) or revoke (tag 1) of the message of step `value`, by its contact.
    st.builds(
        Step,
        st.just("change"),
        CONTACT,
        st.integers(-60, 60).map(lambda minutes: NOW + 60 * minutes),
        tag=st.integers(0, 1),
        value=st.integers(0, 12),
    ),
    # A reply sent from the WhatsApp Business app.
    st.builds(Step, st.just("echo"), CONTACT, st.integers(-170, 0).map(lambda m: NOW + 60 * m)),
    st.builds(
        Step,
        st.just("status"),
        at=st.integers(-60, 60).map(lambda minutes: NOW + 60 * minutes),
        tag=st.integers(0, len(STATUSES) - 1),
        value=st.integers(0, 12),
    ),
)
RECENT_SENT = st.builds(
    Step,
    st.just("sent"),
    CONTACT,
    st.integers(-170, 0).map(lambda m: NOW + 60 * m),
    st.none() | st.integers(0, len(AGENTS) - 1),
)
# Half of the steps are recent messages (hypothesis draws the branches of one_of evenly).
STEPS = st.booleans().flatmap(
    lambda recent: st.one_of(RECENT_INBOUND, RECENT_SENT) if recent else OTHER_STEPS
)

_accounts = itertools.count(1)


class Ledger:
    """Turns history steps into units of work for one account, as the routes would."""

    def __init__(self, engine: AsyncEngine, who: TestAccount, pnid: str, key: str) -> None:
        self.engine, self.who, self.pnid, self.key = engine, who, pnid, key
        self.serial = itertools.count()

    async def unit(self, step: Step) -> "Unit":
        number = next(self.serial)
        wa_id = CONTACTS[step.contact]
        if step.kind == "inbound":
            return await self._delivery(
                inbound(f"wamid.{self.pnid}.{number}", wa_id, step.at, phone_number_id=self.pnid)
            )
        if step.kind == "autoclose":
            return Unit(self._autoclose(NOW + step.value * HOUR))
        if step.kind == "change":
            kind = ("edit", "revoke")[step.tag]
            original = f"wamid.{self.pnid}.{step.value}"
            payload = change(kind, f"wamid.{self.pnid}.{number}", original, step.at, wa_id)
            payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = self.pnid
            return await self._delivery(payload)
        if step.kind == "echo":
            payload = echoes(text_echo(f"wamid.{self.pnid}.{number}", step.at, to=wa_id))
            payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = self.pnid
            return await self._delivery(payload)
        if step.kind == "status":  # about the message of step `value`: sent, inbound, or none yet
            extra: dict[str, Any] = (
                {"errors": [{"code": 131026, "title": "undeliverable"}]}
                if STATUSES[step.tag] == "failed"
                else {}
            )
            minute = step.at // 60
            if minute % 3:  # a third of the statuses carry no pricing
                category = ("service", "marketing", "utility")[minute % 4 % 3]
                extra["pricing"] = {"billable": minute % 2 == 0, "category": category}
            payload = status_payload(
                f"wamid.{self.pnid}.{step.value}", STATUSES[step.tag], step.at, **extra
            )
            payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = self.pnid
            return await self._delivery(payload)
        if step.kind == "click":
            async with session_factory(self.engine)() as session:
                found = await buttons.find_button(session, self.key)
            assert found is not None
            details = buttons.click_details(None, {"utm_campaign": TAGS[step.tag]})
            return Unit(lambda session: buttons.record_click(session, found[0], details, NOW))
        batch_of_one = events.validate_batch({"events": [event_of(step, number, self.pnid)]})
        return Unit(
            lambda session: events.apply_batch(session, self.who.id, batch_of_one),
            general=lambda session: events.apply_batch(
                session, self.who.id, batch_of_one, in_bulk=False
            ),
        )

    async def _delivery(self, payload: dict[str, Any]) -> "Unit":
        """A webhook delivery, as the route hands it to the writer."""
        batch = whatsapp.parse(json.dumps(payload).encode())
        async with session_factory(self.engine)() as session:
            channels = await whatsapp.channels_named(session, batch.numbers)
        return Unit(
            lambda session: whatsapp.store(session, batch, channels),
            (whatsapp.store_many, (batch, channels)),
        )

    def _autoclose(self, now: int) -> Work:
        async def work(session: AsyncSession) -> Any:
            return ("closed", await autoclose.pass_over(session, self.who.id, now))

        return work


@dataclass(frozen=True)
class Unit:
    """A step's work, as one request would hand it to the writer."""

    work: Work
    bulk: Bulk | None = None
    general: Work | None = None  # the reference, when `work` folds in bulk

    @property
    def reference(self) -> Work:
        """What the reference run (one at a time, general path) uses."""
        return self.general or self.work


def described(value: Any) -> Any:
    """What a unit answered, comparable between two accounts (no ids)."""
    if isinstance(value, whatsapp.Outcome):
        return ("webhook", value.messages, value.duplicates, value.statuses)
    if isinstance(value, events.BatchResult):
        return ("events", len(value.stored), len(value.duplicates))
    if isinstance(value, tuple):
        return value
    return ("click",)


async def new_ledger(engine: AsyncEngine) -> Ledger:
    number = next(_accounts)
    who = await create_test_account(engine, f"Group {number}", ZONE, auto_close_hours=3)
    pnid = f"pnid-group-{number}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    async with transaction(engine) as session:
        button = await buttons.create_button(session, who.id, pnid, "Pricing")
    return Ledger(engine, who, pnid, button.key)


async def delivery(engine: AsyncEngine, ledger: Ledger) -> Any:
    """The account's message statuses and the statuses still waiting, by wamid serial."""
    prefix = f"wamid.{ledger.pnid}."
    found = await engine_rows(
        engine,
        "SELECT wamid, status, status_at, error_code, edited_at, deleted_at, pricing_category,"
        " billable, pricing_at FROM message"
        " WHERE account_id = :a",
        a=ledger.who.id,
    )
    waiting = await engine_rows(
        engine,
        "SELECT wamid, status, at, error_code, pricing_category, billable FROM pending_status"
        " WHERE account_id = :a",
        a=ledger.who.id,
    )
    changes = await engine_rows(
        engine, "SELECT wamid, kind, at FROM pending_change WHERE account_id = :a", a=ledger.who.id
    )
    return [
        sorted((row[0].removeprefix(prefix), *row[1:]) for row in listed)
        for listed in (found, waiting, changes)
    ]


async def settle(work: Awaitable[Any]) -> Any:
    try:
        return described(await work)
    except events.BatchRejected as rejected:
        return ("rejected", [(error.index, error.field) for error in rejected.errors])


@pytest.fixture
async def quiet_app(database_url: str) -> Any:
    """An app whose auto-close job stays asleep: every transaction of its writer is the test's."""
    settings = make_settings(database_url, autoclose_interval_seconds=86_400)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@settings(BOUNDED, max_examples=int(os.environ.get("GROUP_EXAMPLES", "25")))
@example(
    steps=[
        Step("echo", 0, NOW),
        Step("echo", 0, NOW),
        Step("inbound", 1, NOW),
        Step("inbound", 0, 1792890000),
    ],
    cuts=[3],
    flt={"from": "2026-10-24", "to": "2026-10-25"},
)
# Contact 1 wrote 10 hours ago, nobody answered; the auto-close pass runs 21 hours from now,
# past the contact's window but too late to look back at it. Folded with the messages, the
# pass's clock once brought every conversation of the transaction up to date as of its
# instant (window missed), not only the ones it touched (one at a time: not yet marked).
@example(
    steps=[
        Step("echo", 0, NOW),
        Step("inbound", 2, NOW),
        Step("inbound", 1, NOW - 36_000),
        Step("sent", 2, NOW - 1_740, 2),
        Step("sent", 2, NOW - 8_580, 2),
        Step("autoclose", value=21),
    ],
    cuts=[8],
    flt={"from": _day_of(NOW - 36_000), "to": _day_of(NOW)},
)
@given(
    steps=st.lists(STEPS, min_size=4, max_size=30),
    cuts=st.lists(st.integers(1, 8), min_size=1, max_size=30),
    flt=report_filters(),
)
async def test_grouped_folding_equals_one_request_at_a_time(
    quiet_app: Starlette, steps: list[Step], cuts: list[int], flt: dict[str, Any]
) -> None:
    engine: AsyncEngine = quiet_app.state.engine
    alone, grouped = await new_ledger(engine), await new_ledger(engine)
    writer = writer_of(quiet_app)
    sizes: list[int] = []
    formed: list[int] = []
    writer.on_fold = lambda fold: sizes.append(fold.units)
    answers_alone: list[Any] = []
    answers_grouped: list[Any] = []
    position = 0
    for cut in itertools.cycle(cuts):
        group = steps[position : position + cut]
        if not group:
            break
        position += cut
        formed.append(len(group))
        for step in group:  # the reference: each step its own transaction, synced at once
            answers_alone.append(await settle(write(engine, (await alone.unit(step)).reference)))
        units = [await grouped.unit(step) for step in group]
        async with writer.held():
            pending = [
                asyncio.create_task(settle(writer.submit(unit.work, bulk=unit.bulk)))
                for unit in units
            ]
            await wait_for_depth(writer, len(units))
        answers_grouped += await asyncio.gather(*pending)
    assert answers_grouped == answers_alone
    assert sizes == formed  # each group was one transaction (or one split)

    def rows_of(found: list[Any]) -> list[dict[str, Any]]:
        # Sorted by content: two conversations that start in the same second are numbered in
        # the order their transactions wrote them, which grouping may change.
        return sorted(
            (
                figures(row)
                | {"assigned": row.assignee_id is not None}
                | {"changed": (row.edited_messages, row.deleted_messages)}
                for row in found
            ),
            key=repr,
        )

    assert rows_of(await conversation_rows(engine, grouped.who.id)) == rows_of(
        await conversation_rows(engine, alone.who.id)
    )
    assert await delivery(engine, grouped) == await delivery(engine, alone)
    for name, query in REPORTS.items():
        async with client_of(quiet_app) as client:
            reports = [
                await graphql(client, who, query, {"f": flt}) for who in (alone.who, grouped.who)
            ]
        assert reports[0] == reports[1], name
    for ledger in (alone, grouped):
        kept = await aggregate_rows(engine, ledger.who.id)
        async with transaction(engine) as session:
            await maintenance.rebuild_aggregates(session, ledger.who.id)
        assert await aggregate_rows(engine, ledger.who.id) == kept


# --- concurrency faults seen before group commit ----------------------------------------------


@pytest.fixture
async def second_app(database_url: str) -> Any:
    """Another server process on the same database: its own pool and its own writer."""
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


def client_of(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def watch_folds(*apps: Starlette) -> set[str]:
    """The outcomes of the writers' transactions, as they happen."""
    outcomes: set[str] = set()
    for app in apps:
        writer_of(app).on_fold = lambda fold: outcomes.add(fold.outcome)
    return outcomes


def sent_batch(batch: int, size: int, agents: list[str]) -> list[dict[str, Any]]:
    """`size` agent messages to contacts of their own, agents taken in the order given."""
    return [
        {
            "id": f"b{batch}-{n}",
            "type": "message.sent",
            "at": T + n,
            "phone": f"+3370{batch:03d}{n:04d}",
            "messageId": f"out-{batch}-{n}",
            "agentEmail": agents[n % len(agents)],
        }
        for n in range(size)
    ]


async def test_two_processes_fold_the_same_contacts_without_deadlock_or_loss(
    app: Starlette, second_app: Starlette, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    agents = [f"agent{n}@acme.test" for n in range(4)]  # not known yet
    outcomes = watch_folds(app, second_app)
    async with client_of(app) as first, client_of(second_app) as second:

        async def sender(http: httpx.AsyncClient, n: int) -> list[int]:
            # The same five contacts from both processes, agents in opposite orders.
            order = agents if n % 2 else agents[::-1]
            answers = [
                await post_webhook(http, inbound(f"in-{n}-{k}", f"3361000000{k % 5}", T + n + k))
                for k in range(5)
            ]
            events = [
                {
                    "id": f"s{n}-{k}",
                    "type": "message.sent",
                    "at": T + n + k + 1,
                    "phone": f"+3361000000{k % 5}",
                    "messageId": f"out-{n}-{k}",
                    "agentEmail": order[k % 4],
                }
                for k in range(10)
            ]
            answers.append(await post_events(http, account, events))
            return [answer.status_code for answer in answers]

        results = await asyncio.gather(*(sender(first if n % 2 else second, n) for n in range(16)))
    assert {status for statuses in results for status in statuses} == {200}
    assert outcomes == {"committed"}  # no transaction was rolled back (deadlock, race)
    counts = await count_rows(engine)
    assert (counts["contact"], counts["conversation"]) == (5, 5)
    assert counts["message"] == 16 * 5 + 16 * 10
    assert counts["ingested_event"] == 16 * 10
    kept = await aggregate_rows(engine, account.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, account.id)
    assert await aggregate_rows(engine, account.id) == kept


async def test_concurrent_batches_with_new_agents_never_deadlock(
    app: Starlette, second_app: Starlette, engine: AsyncEngine, account: TestAccount
) -> None:
    """Ten batches of 50 agent messages on different contacts, agents among four not yet known,
    from two processes at once (on PostgreSQL, 7 of 10 used to die as deadlock victims)."""
    agents = [f"agent{n}@acme.test" for n in range(4)]
    outcomes = watch_folds(app, second_app)
    async with client_of(app) as first, client_of(second_app) as second:
        answers = await asyncio.gather(
            *(
                post_events(
                    first if n % 2 else second,
                    account,
                    sent_batch(n, 50, agents if n % 2 else agents[::-1]),
                )
                for n in range(10)
            )
        )
    assert [answer.status_code for answer in answers] == [200] * 10
    assert outcomes == {"committed"}
    counts = await count_rows(engine)
    assert (counts["message"], counts["conversation"], counts["contact"]) == (500, 500, 500)


async def test_many_concurrent_requests_neither_exhaust_the_pool_nor_stall_other_accounts(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """70 requests at once (the pool holds 10 + 20): webhooks, event batches, and another
    account's reports, all answered 200."""
    await add_channel(engine, account.id)
    reader = await create_test_account(engine, "Reader")
    day = _day_of(T)
    query = (
        f'{{ summaryReport(filter: {{from: "{day}", to: "{day}"}}) {{ totals {{ messages }} }} }}'
    )
    requests = [
        *(post_webhook(client, inbound(f"p{n}", f"3362000{n:04d}", T + n)) for n in range(30)),
        *(post_events(client, account, sent_batch(n, 5, ["ana@acme.test"])) for n in range(20)),
        *(
            client.post("/graphql", json={"query": query}, headers=reader.headers)
            for _ in range(20)
        ),
    ]
    answers = await asyncio.gather(*requests)
    assert [answer.status_code for answer in answers] == [200] * 70
    counts = await count_rows(engine)
    assert counts["message"] == 30 + 20 * 5


async def test_statuses_before_their_message_in_one_transaction_wait_as_they_would_alone(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Two `delivered` statuses, then the message they describe, folded together: as one at a
    time, they wait, and the message takes the best of them (rank, then latest), not the first."""
    await add_channel(engine, account.id)
    writer = writer_of(app)
    sent = {"id": "e1", "type": "message.sent", "at": T, "phone": "+33612345678"}
    async with writer.held():
        posts = [
            asyncio.create_task(post_webhook(client, status_payload("out-1", "delivered", T + 5))),
            asyncio.create_task(post_webhook(client, status_payload("out-1", "delivered", T + 9))),
        ]
        await wait_for_depth(writer, 2)
        posts.append(
            asyncio.create_task(
                post_events(client, account, [sent | {"messageId": "out-1", "agentEmail": None}])
            )
        )
        await wait_for_depth(writer, 3)
        posts.append(
            asyncio.create_task(post_webhook(client, status_payload("out-1", "sent", T + 12)))
        )
        await wait_for_depth(writer, 4)
    assert [(await post).status_code for post in posts] == [200] * 4
    found = await engine_rows(engine, "SELECT status, status_at FROM message")
    assert found == [("delivered", T + 9)]
    assert await engine_rows(engine, "SELECT COUNT(*) FROM pending_status") == [(0,)]


# --- event batches: the bulk fold (message.sent and conversation.tagged) == the general path ---

EVENT_STEPS = st.one_of(
    RECENT_SENT,
    st.builds(
        Step,
        st.just("tagged"),
        CONTACT,
        st.integers(-170, 0).map(lambda m: NOW + 60 * m),
        tag=st.integers(0, len(TAGS) - 1),
    ),
    CONVERSATION_EVENT_STEP,
)


async def conversation_tags(engine: AsyncEngine, account_id: int) -> list[tuple[Any, ...]]:
    return await engine_rows(
        engine,
        "SELECT c.started_at, k.phone, t.name FROM conversation_tag ct"
        " JOIN conversation c ON c.id = ct.conversation_id JOIN contact k ON k.id = c.contact_id"
        " JOIN tag t ON t.id = ct.tag_id WHERE ct.account_id = :a ORDER BY 1, 2, 3",
        a=account_id,
    )


async def named_in_order(engine: AsyncEngine, account_id: int) -> list[tuple[Any, ...]]:
    """The account's agents and tags in the order they were created."""
    return await engine_rows(
        engine,
        "SELECT 'agent', email, id FROM agent WHERE account_id = :a UNION ALL"
        " SELECT kind, name, id FROM tag WHERE account_id = :a ORDER BY 1, 3",
        a=account_id,
    )


@settings(BOUNDED, max_examples=int(os.environ.get("GROUP_EXAMPLES", "25")))
@given(
    steps=st.lists(EVENT_STEPS, min_size=2, max_size=40),
    cuts=st.lists(st.integers(1, 20), min_size=1, max_size=10),
)
async def test_event_batches_fold_in_bulk_as_on_the_general_path(
    quiet_app: Starlette, steps: list[Step], cuts: list[int]
) -> None:
    """Batches mixing message.sent, conversation.tagged and the other events: folded in bulk
    they answer and leave the same rows, tags and aggregates as event by event. Every contact
    has a conversation first (else most batches name one without and are refused whole)."""
    engine: AsyncEngine = quiet_app.state.engine
    opening = [Step("sent", n, NOW - 60 * 171 - n) for n in range(len(CONTACTS))]
    steps = opening + steps
    ledgers = {True: await new_ledger(engine), False: await new_ledger(engine)}
    answers: dict[bool, list[Any]] = {True: [], False: []}
    position, number = 0, itertools.count()
    for cut in itertools.cycle(cuts):
        if position >= len(steps):
            break
        numbers = [next(number) for _ in steps[position : position + cut]]
        for in_bulk, ledger in ledgers.items():
            documents = [
                event_of(step, n, "pnid")
                for step, n in zip(steps[position : position + cut], numbers, strict=True)
            ]
            batch = events.validate_batch({"events": documents})

            async def work(
                session: AsyncSession,
                batch: Any = batch,
                flag: bool = in_bulk,
                who: int = ledger.who.id,
            ) -> Any:
                return await events.apply_batch(session, who, batch, in_bulk=flag)

            answers[in_bulk].append(await settle(writer_of(quiet_app).submit(work)))
        position += cut
    assert answers[True] == answers[False]
    bulk, general = ledgers[True].who.id, ledgers[False].who.id
    rows = [await conversation_rows(engine, who) for who in (bulk, general)]
    assert [figures(row) for row in rows[0]] == [figures(row) for row in rows[1]]
    assert await conversation_tags(engine, bulk) == await conversation_tags(engine, general)
    # Created in the same order (the ids differ: both accounts share the tables).
    created = [await named_in_order(engine, who) for who in (bulk, general)]
    assert [row[:2] for row in created[0]] == [row[:2] for row in created[1]]
    for who in (bulk, general):
        kept = await aggregate_rows(engine, who)
        async with transaction(engine) as session:
            await maintenance.rebuild_aggregates(session, who)
        assert await aggregate_rows(engine, who) == kept


async def test_a_batch_tags_the_conversations_its_messages_start_and_closes_an_overdue_one(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Worked example: +33611111111 wrote 26 hours ago, when the conversation was open (stored
    then, with that moment's clock), and it is overdue now, not closed yet; +33622222222 has no
    conversation. One batch: an agent writes to the second contact (a new INBOX conversation),
    tags it twice ("Sales", "sales": one tag), and tags the first contact's conversation, which
    is closed automatically at its last message + 24 h as it is tagged."""
    old = NOW - 26 * HOUR

    async def earlier(session: AsyncSession) -> Any:
        contacts = await lock_contacts(session, account.id, ["+33611111111"], ["+33611111111"])
        clock = await conversations.clock_of(session, account.id, now=old + 60)
        message = NewMessage(contacts["+33611111111"], None, "w0", "contact", old)
        return await conversations.record_message(session, clock, message)

    assert (await write(engine, earlier)).closed_at is None
    batch = [
        {"id": "m1", "type": "message.sent", "at": NOW - 60, "phone": "+33622222222"}
        | {"messageId": "w1", "agentEmail": "ana@example.com"},
        {"id": "t1", "type": "conversation.tagged", "at": NOW - 50, "phone": "+33622222222"}
        | {"tag": "Sales"},
        {"id": "t2", "type": "conversation.tagged", "at": NOW - 40, "phone": "+33622222222"}
        | {"tag": "sales"},
        {"id": "t3", "type": "conversation.tagged", "at": NOW - 30, "phone": "+33611111111"}
        | {"tag": "Stale"},
    ]
    response = await post_events(client, account, batch)
    assert response.json() == {"stored": ["m1", "t1", "t2", "t3"], "duplicates": []}
    assert await conversation_tags(engine, account.id) == [
        (old, "+33611111111", "Stale"),
        (NOW - 60, "+33622222222", "Sales"),
    ]
    found = {row.started_at: row for row in await conversation_rows(engine, account.id)}
    assert (found[old].status, found[old].closed_at, found[old].auto_closed) == (
        "CLOSED",
        old + 24 * HOUR,
        True,
    )
    assert (found[NOW - 60].source, found[NOW - 60].status) == ("INBOX", "PENDING")
    kept = await aggregate_rows(engine, account.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, account.id)
    assert await aggregate_rows(engine, account.id) == kept


async def two_accounts_watched(
    app: Starlette, engine: AsyncEngine, account: TestAccount
) -> tuple[
    GroupWriter, list[int], list[str], Callable[[str, Awaitable[httpx.Response]], Awaitable[None]]
]:
    """The account and another one with a number each; the writer, the items of each of its
    transactions, the requests answered in order, and `tracked(name, request)` that notes one."""
    other = await create_test_account(engine, "Other")
    await add_channel(engine, other.id, phone_number_id="pnid-other")
    await add_channel(engine, account.id)
    writer = writer_of(app)
    folds: list[int] = []
    writer.on_fold = lambda fold: folds.append(fold.items)
    done: list[str] = []

    async def tracked(name: str, request: Awaitable[httpx.Response]) -> None:
        response = await request
        assert response.status_code == 200, response.text
        done.append(name)

    return writer, folds, done, tracked


async def test_small_requests_of_other_accounts_go_before_a_large_batch(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Account A's batch of 150 events is next in the queue; behind it wait B's webhook and A's
    webhook. B's goes first, in a transaction of its own; A's keep their order."""
    writer, folds, done, tracked = await two_accounts_watched(app, engine, account)

    async with writer.held():
        tasks = [
            asyncio.create_task(
                tracked(
                    "A batch", post_events(client, account, sent_batch(1, 150, ["ana@example.com"]))
                )
            )
        ]
        await wait_for_depth(writer, 150)
        b_webhook = inbound("w-b", "33612345678", T, phone_number_id="pnid-other")
        tasks.append(asyncio.create_task(tracked("B webhook", post_webhook(client, b_webhook))))
        await wait_for_depth(writer, 151)
        tasks.append(
            asyncio.create_task(
                tracked("A webhook", post_webhook(client, inbound("w-a", "33612345678", T)))
            )
        )
        await wait_for_depth(writer, 152)
    await asyncio.gather(*tasks)
    assert done == ["B webhook", "A batch", "A webhook"]
    assert folds == [1, 151]


async def test_a_small_request_ahead_of_a_large_batch_does_not_wait_for_it(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """B's webhook is first in the queue, A's batch of 150 events behind it, then A's webhook.
    B's webhook folds alone, not in the batch's transaction (it used to share it, and wait for
    the batch's whole fold); A's webhook still follows its batch."""
    writer, folds, done, tracked = await two_accounts_watched(app, engine, account)

    async with writer.held():
        b_webhook = inbound("w-b", "33612345678", T, phone_number_id="pnid-other")
        tasks = [asyncio.create_task(tracked("B webhook", post_webhook(client, b_webhook)))]
        await wait_for_depth(writer, 1)
        batch = sent_batch(1, 150, ["ana@example.com"])
        tasks.append(asyncio.create_task(tracked("A batch", post_events(client, account, batch))))
        await wait_for_depth(writer, 151)
        a_webhook = inbound("w-a", "33612345678", T)
        tasks.append(asyncio.create_task(tracked("A webhook", post_webhook(client, a_webhook))))
        await wait_for_depth(writer, 152)
    await asyncio.gather(*tasks)
    assert folds == [1, 151]
    assert done == ["B webhook", "A batch", "A webhook"]


async def test_two_large_batches_are_two_transactions(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Two batches of 150 events wait, and another account's webhook behind them. The webhook
    goes first; the batches then fold one per transaction (they used to share one): what
    arrives while one folds waits for that one only, never for two."""
    writer, folds, done, tracked = await two_accounts_watched(app, engine, account)

    agents = ["ana@example.com"]
    async with writer.held():
        tasks = [
            asyncio.create_task(
                tracked("A batch 1", post_events(client, account, sent_batch(1, 150, agents)))
            )
        ]
        await wait_for_depth(writer, 150)
        tasks.append(
            asyncio.create_task(
                tracked("A batch 2", post_events(client, account, sent_batch(2, 150, agents)))
            )
        )
        await wait_for_depth(writer, 300)
        b_webhook = inbound("w-b", "33612345678", T, phone_number_id="pnid-other")
        tasks.append(asyncio.create_task(tracked("B webhook", post_webhook(client, b_webhook))))
        await wait_for_depth(writer, 301)
    await asyncio.gather(*tasks)
    assert folds == [1, 150, 150]
    assert done == ["B webhook", "A batch 1", "A batch 2"]


async def test_the_writer_keeps_postgresql_planner_statistics_up_with_what_it_stores(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    """Without statistics (a new database, autovacuum off or behind) PostgreSQL's planner walks
    an account's whole index for a key look-up; the writer analyzes the tables it fills."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no planner statistics")
    from sqlalchemy import text

    async def reltuples() -> float:
        async with session_factory(engine)() as session:
            query = text("SELECT reltuples FROM pg_class WHERE relname = 'message'")
            return float((await session.execute(query)).scalar_one())

    await add_channel(engine, account.id)
    statistics = writer_of(app).statistics
    statistics.first = statistics.threshold = 3
    assert await reltuples() == -1  # never analyzed
    for n in range(2):
        await post_webhook(client, inbound(f"s{n}", "33610000001", T + n))
    assert statistics.task is None and await reltuples() == -1
    await post_webhook(client, inbound("s2", "33610000001", T + 2))
    assert statistics.task is not None
    await statistics.task
    assert statistics.runs == 1 and await reltuples() == 3


def test_planner_statistics_are_refreshed_as_the_stored_items_double_then_grow_by_a_fifth() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from ingest.statistics import DOUBLING_UNTIL, PlannerStatistics

    async def scenario() -> list[int]:
        engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        statistics = PlannerStatistics(engine, first=100)
        analyzed_at: list[int] = []

        async def analyze() -> None:
            analyzed_at.append(statistics.total)

        statistics._analyze = analyze  # type: ignore[method-assign]  (no server: count the runs)
        for _ in range(2000):
            statistics.committed(10)
            await asyncio.sleep(0)
        return analyzed_at

    # After 100 items, then each time all stored so far has doubled, until 10,000; then each
    # time a fifth of all stored so far has come.
    assert DOUBLING_UNTIL == 10_000
    assert asyncio.run(scenario()) == [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15360, 18440]


async def test_on_postgresql_other_accounts_fold_beside_a_large_batch_in_progress(
    app: Starlette, engine: AsyncEngine
) -> None:
    """A large unit of account A is folding (its transaction open); a webhook-sized unit of
    account B arrives. On PostgreSQL B commits in a transaction of its own meanwhile (another
    connection, another advisory lock); on SQLite, one writer, B waits for A's commit. A unit of
    A itself never passes A's large one."""
    writer = writer_of(app)
    a = await create_test_account(engine, "Large A")
    b = await create_test_account(engine, "Small B")
    started, gate = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    def unit(name: str, wait: bool = False) -> Callable[[AsyncSession], Awaitable[str]]:
        async def work(session: AsyncSession) -> str:
            await session.execute(select_one)
            if wait:
                started.set()
                await gate.wait()
            finished.append(name)
            return name

        return work

    from sqlalchemy import text

    select_one = text("SELECT 1")
    large = asyncio.create_task(writer.submit(unit("A large", wait=True), 150, [a.id]))
    await asyncio.wait_for(started.wait(), 10)
    small_b = asyncio.create_task(writer.submit(unit("B small"), 1, [b.id]))
    small_a = asyncio.create_task(writer.submit(unit("A small"), 1, [a.id]))
    if engine.dialect.name == "postgresql":
        assert await asyncio.wait_for(small_b, 10) == "B small"
        assert finished == ["B small"] and not small_a.done()
    else:
        await asyncio.sleep(0.2)
        assert finished == [] and not small_b.done()
    gate.set()
    assert await asyncio.gather(large, small_b, small_a) == ["A large", "B small", "A small"]
    assert finished.index("A large") < finished.index("A small")
    async with writer.held():  # the writer settles back to idle
        pass
