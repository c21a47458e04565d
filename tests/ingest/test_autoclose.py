"""Auto-close: the job, the same rule applied by arriving messages, and both orders giving the
same rows; `wareports autoclose` and the periodic task of the app."""

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from ingest.autoclose import close_due
from models import PendingStatus
from models.db import transaction
from models.settings import get_settings
from tests.conftest import TestAccount, create_test_account, make_settings
from tests.ingest.support import (
    add_channel,
    conversations,
    figures,
    inbound,
    messages,
    post_events,
    post_webhook,
    rows,
)

HOUR = 3600
WA_ID = "33612345678"


@pytest.fixture
async def hourly(engine: AsyncEngine) -> TestAccount:
    """An account whose conversations close after one hour without a message."""
    account = await create_test_account(engine, "Hourly", auto_close_hours=1)
    await add_channel(engine, account.id)
    return account


async def message(client: httpx.AsyncClient, wamid: str, at: int) -> None:
    response = await post_webhook(client, inbound(wamid, WA_ID, at))
    assert response.status_code == 200, response.text


async def snapshot(engine: AsyncEngine, account: TestAccount) -> list[dict[str, Any]]:
    return [figures(row) for row in await conversations(engine, account.id)]


async def test_job_closes_at_last_message_plus_delay(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount
) -> None:
    t0 = int(time.time()) - 600
    await message(client, "w1", t0)
    await message(client, "w2", t0 + 60)
    assert await close_due(engine, now=t0 + 60 + HOUR - 1) == 0
    [conversation] = await conversations(engine)
    assert conversation.status == "OPEN"
    assert await close_due(engine, now=t0 + 60 + HOUR) == 1
    assert await close_due(engine, now=t0 + 60 + HOUR + 500) == 0  # idempotent
    [conversation] = await conversations(engine)
    assert (conversation.status, conversation.closed_at, conversation.auto_closed) == (
        "CLOSED",
        t0 + 60 + HOUR,
        True,
    )
    assert conversation.closed_by_id is None


async def test_job_forgets_pending_statuses_older_than_seven_days(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount
) -> None:
    """A status whose message never comes (sent from elsewhere, or a probe) was kept for ever."""
    now = int(time.time())
    other = await create_test_account(engine, "Other")
    async with transaction(engine) as session:
        for account_id, wamid, at in (
            (hourly.id, "old", now - 7 * 86_400 - 1),
            (hourly.id, "recent", now - 7 * 86_400 + 60),
            (other.id, "other-old", now - 30 * 86_400),
        ):
            session.add(PendingStatus(account_id=account_id, wamid=wamid, status="read", at=at))
    await close_due(engine, now=now)
    left = await rows(engine, PendingStatus, PendingStatus.id)
    assert [row.wamid for row in left] == ["recent"]
    # The recent one is still applied when its message is recorded.
    sent = {"id": "e1", "type": "message.sent", "at": now - 8 * 86_400, "phone": "+" + WA_ID}
    response = await post_events(client, hourly, [sent | {"messageId": "recent"}])
    assert response.status_code == 200, response.text
    assert await rows(engine, PendingStatus, PendingStatus.id) == []
    [stored] = await messages(engine)
    assert (stored.wamid, stored.status) == ("recent", "read")


async def test_job_uses_each_accounts_delay(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount, account: TestAccount
) -> None:
    t0 = int(time.time()) - 600
    await message(client, "w1", t0)  # the hourly account's number
    started = {"id": "e1", "type": "conversation.started", "at": t0, "phone": "+4912345678"}
    response = await post_events(client, account, [started | {"source": "FLOW"}])
    assert response.status_code == 200
    assert await close_due(engine, now=t0 + 2 * HOUR) == 1
    assert await close_due(engine, now=t0 + 24 * HOUR) == 1
    closed = sorted(row.closed_at or 0 for row in await conversations(engine))
    assert closed == [t0 + HOUR, t0 + 24 * HOUR]


async def test_concurrent_jobs_close_each_conversation_once(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount
) -> None:
    t0 = int(time.time()) - 600
    for index in range(12):
        response = await post_webhook(
            client, inbound(f"w{index}", f"3361234{index:04d}", t0 + index)
        )
        assert response.status_code == 200
    counts = await asyncio.gather(*(close_due(engine, now=t0 + 2 * HOUR) for _ in range(4)))
    assert sum(counts) == 12
    rows = await conversations(engine)
    assert [row.closed_at for row in rows] == [t0 + index + HOUR for index in range(12)]


async def test_stale_conversation_is_closed_by_the_next_message_as_by_the_job(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount, database_url: str
) -> None:
    # Open at write time: its last message is 50 minutes old and the delay is one hour.
    t0 = int(time.time()) - 50 * 60
    t1 = t0 + HOUR + 20 * 60  # the contact writes again 80 minutes after the last message
    await message(client, "w1", t0)
    assert await close_due(engine, now=t0 + HOUR + 60) == 1  # the job ran in between
    await message(client, "w2", t1)
    job_first = await snapshot(engine, hourly)

    other = await create_test_account(engine, "Hourly 2", auto_close_hours=1)
    await add_channel(engine, other.id, "98765", "second-secret", "second-verify")
    second = inbound("w3", WA_ID, t0, phone_number_id="98765")
    assert (await post_webhook(client, second, "second-secret")).status_code == 200
    late = inbound("w4", WA_ID, t1, phone_number_id="98765")
    assert (await post_webhook(client, late, "second-secret")).status_code == 200
    no_job = await snapshot(engine, other)

    expected_first = {
        "source": "INBOUND",
        "source_explicit": False,
        "direction": "INBOUND",
        "status": "CLOSED",
        "started_at": t0,
        "first_inbound_at": t0,
        "first_response_at": None,
        "last_message_at": t0,
        "closed_at": t0 + HOUR,
        "auto_closed": True,
        "message_count": 1,
        "inbound_count": 1,
        "outbound_count": 0,
        "rating": None,
        "rated_at": None,
    }
    expected_second = expected_first | {
        "status": "OPEN",
        "started_at": t1,
        "first_inbound_at": t1,
        "last_message_at": t1,
        "closed_at": None,
        "auto_closed": False,
    }
    assert job_first == [expected_first, expected_second]
    assert no_job == job_first


async def test_late_message_reopens_then_job_recloses_in_either_order(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount
) -> None:
    t0 = int(time.time()) - 50 * 60
    later = t0 + 2 * HOUR  # the job's clock, after every deadline below
    await message(client, "w1", t0)
    assert await close_due(engine, now=later) == 1  # closed at t0 + 1 h, as the job saw it
    await message(client, "w0", t0 + 5 * 60)  # sent before the close, delivered after it
    [reopened] = await conversations(engine)
    # Its new deadline (t0 + 65 min) is still ahead of the real clock: open again.
    assert (reopened.status, reopened.closed_at, reopened.auto_closed) == ("OPEN", None, False)
    assert await close_due(engine, now=later) == 1
    job_first = await snapshot(engine, hourly)

    other = await create_test_account(engine, "Hourly 2", auto_close_hours=1)
    await add_channel(engine, other.id, "98765", "second-secret", "second-verify")
    for wamid, at in (("x1", t0), ("x0", t0 + 5 * 60)):
        payload = inbound(wamid, WA_ID, at, phone_number_id="98765")
        assert (await post_webhook(client, payload, "second-secret")).status_code == 200
    assert await close_due(engine, now=later) == 1
    message_first = await snapshot(engine, other)

    assert job_first == [
        {
            "source": "INBOUND",
            "source_explicit": False,
            "direction": "INBOUND",
            "status": "CLOSED",
            "started_at": t0,
            "first_inbound_at": t0,
            "first_response_at": None,
            "last_message_at": t0 + 5 * 60,
            "closed_at": t0 + 5 * 60 + HOUR,
            "auto_closed": True,
            "message_count": 2,
            "inbound_count": 2,
            "outbound_count": 0,
            "rating": None,
            "rated_at": None,
        }
    ]
    assert message_first == job_first


@pytest.mark.parametrize("late_first", [False, True])
async def test_past_conversations_are_the_same_in_any_order(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount, late_first: bool
) -> None:
    t0 = int(time.time()) - 5 * HOUR
    order = [("w2", t0 + 30 * 60), ("w1", t0)] if late_first else [("w1", t0), ("w2", t0 + 30 * 60)]
    for wamid, at in order:
        await message(client, wamid, at)
        await close_due(engine)
    await message(client, "w3", t0 + 3 * HOUR)
    first, second = await conversations(engine)
    assert (first.started_at, first.last_message_at, first.message_count) == (t0, t0 + 1800, 2)
    assert (first.closed_at, first.auto_closed, first.status) == (t0 + 1800 + HOUR, True, "CLOSED")
    assert (second.started_at, second.closed_at) == (t0 + 3 * HOUR, t0 + 4 * HOUR)


async def test_close_event_after_the_deadline_keeps_the_automatic_close(
    client: httpx.AsyncClient, engine: AsyncEngine, hourly: TestAccount
) -> None:
    t0 = int(time.time()) - 5 * HOUR
    await message(client, "w1", t0)
    late_close = {"id": "c1", "type": "conversation.closed", "at": t0 + 2 * HOUR}
    response = await post_events(
        client, hourly, [late_close | {"phone": "+" + WA_ID, "agentEmail": "a@b.io"}]
    )
    assert response.status_code == 200
    [conversation] = await conversations(engine)
    assert (conversation.closed_at, conversation.auto_closed, conversation.closed_by_id) == (
        t0 + HOUR,
        True,
        None,
    )
    early_close = {"id": "c2", "type": "conversation.closed", "at": t0 + 600, "phone": "+" + WA_ID}
    response = await post_events(client, hourly, [early_close | {"agentEmail": "a@b.io"}])
    assert response.status_code == 200
    [conversation] = await conversations(engine)
    assert (conversation.closed_at, conversation.auto_closed) == (t0 + 600, False)
    assert conversation.closed_by_id is not None


async def test_periodic_task_closes_and_stops_with_the_app(database_url: str) -> None:
    application = create_app(make_settings(database_url, autoclose_interval_seconds=0.1))
    async with application.router.lifespan_context(application):
        engine = application.state.engine
        # A window of a few seconds: the check right after the message must see it open
        # even on a loaded machine, and the periodic pass must close it soon after.
        account = await create_test_account(engine, "Quick", auto_close_hours=4 / 3600)
        await add_channel(engine, account.id)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            t0 = int(time.time())
            await message(client, "w1", t0 + 1)  # open until t0 + 5
            [conversation] = await conversations(engine)
            assert conversation.status == "OPEN"
            for _ in range(150):
                await asyncio.sleep(0.1)
                [conversation] = await conversations(engine)
                if conversation.status == "CLOSED":
                    break
            assert (conversation.closed_at, conversation.auto_closed) == (t0 + 5, True)
        tasks = [task for task in asyncio.all_tasks() if task.get_name() == "autoclose"]
        assert len(tasks) == 1
    assert tasks[0].cancelled()


def test_cli_autoclose_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREPORTS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            cli, ["account", "create", "--name", "Cli", "--auto-close-hours", "1"]
        )
        assert result.exit_code == 0, result.output
        result = runner.invoke(cli, ["autoclose", "--once"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"closed": 0}
    finally:
        get_settings.cache_clear()
