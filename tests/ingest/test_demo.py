"""The demo generator: its rows obey the conversation-row rules of ingestion, on both engines,
and the same seed gives the same inbox."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest.demo import delete_account, demo_phone, generate, is_demo_account
from tests.conftest import TestAccount, create_test_account

END = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(sql), params)).all()]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar()


@pytest.fixture
async def paris(engine: AsyncEngine) -> TestAccount:
    """An account in Europe/Paris with 300 generated conversations over 30 days before END."""
    account = await create_test_account(engine, "Demo", "Europe/Paris")
    await generate(engine, account.id, conversations=300, days=30, seed=7, end=END)
    return account


MESSAGE_FIGURES = """
WITH figures AS (
  SELECT conversation_id,
         COUNT(*) AS messages,
         SUM(CASE WHEN direction = 'INBOUND' THEN 1 ELSE 0 END) AS inbound,
         SUM(CASE WHEN direction = 'OUTBOUND' THEN 1 ELSE 0 END) AS outbound,
         MIN(sent_at) AS first_at,
         MAX(sent_at) AS last_at,
         MIN(CASE WHEN direction = 'INBOUND' THEN sent_at END) AS first_inbound
  FROM message WHERE account_id = :account GROUP BY conversation_id
)
SELECT c.id FROM conversation c LEFT JOIN figures f ON f.conversation_id = c.id
WHERE c.account_id = :account AND (
  f.conversation_id IS NULL
  OR c.message_count <> f.messages OR c.inbound_count <> f.inbound
  OR c.outbound_count <> f.outbound
  OR c.started_at <> f.first_at OR c.last_message_at <> f.last_at
  OR COALESCE(c.first_inbound_at, -1) <> COALESCE(f.first_inbound, -1)
)
"""

FIRST_RESPONSE = """
SELECT c.id FROM conversation c
WHERE c.account_id = :account AND COALESCE(c.first_response_at, -1) <> COALESCE((
  SELECT MIN(m.sent_at) FROM message m
  WHERE m.conversation_id = c.id AND m.direction = 'OUTBOUND' AND m.sender = 'agent'
    AND m.agent_id IS NOT NULL AND m.sent_at >= c.first_inbound_at
), -1)
"""

FIRST_AND_LAST_MESSAGE = """
SELECT c.id FROM conversation c
JOIN message first ON first.conversation_id = c.id AND first.sent_at = c.started_at
JOIN message last ON last.conversation_id = c.id AND last.sent_at = c.last_message_at
WHERE c.account_id = :account AND NOT (
  c.direction = first.direction
  AND c.source = CASE WHEN first.direction = 'INBOUND' THEN 'INBOUND'
                      WHEN first.sender = 'automation' THEN 'FLOW' ELSE 'INBOX' END
  AND c.status = CASE WHEN c.closed_at IS NOT NULL THEN 'CLOSED'
                      WHEN last.direction = 'OUTBOUND' THEN 'PENDING' ELSE 'OPEN' END
)
"""

CLOSING_AND_RATING = """
SELECT c.id FROM conversation c WHERE c.account_id = :account AND NOT (
  (c.closed_at IS NULL OR c.closed_at <= :end)
  AND (NOT c.auto_closed OR (c.closed_at = c.last_message_at + 86400 AND c.closed_by_id IS NULL))
  AND (c.auto_closed OR c.closed_at IS NULL
       OR (c.closed_by_id IS NOT NULL AND c.closed_at < c.last_message_at + 86400))
  AND (c.closed_at IS NOT NULL OR c.closed_by_id IS NULL)
  AND ((c.rating IS NULL AND c.rated_at IS NULL)
       OR (c.rating BETWEEN 1 AND 5 AND c.rated_at >= c.closed_at AND c.rated_at <= :end))
  AND c.last_message_at <= :end
  AND (c.closed_at IS NOT NULL OR c.last_message_at + 86400 > :end)
)
"""

SENDERS = """
SELECT m.id FROM message m WHERE m.account_id = :account AND NOT (
  (m.sender = 'contact' AND m.direction = 'INBOUND' AND m.agent_id IS NULL)
  OR (m.sender = 'agent' AND m.direction = 'OUTBOUND' AND m.agent_id IS NOT NULL)
  OR (m.sender = 'automation' AND m.direction = 'OUTBOUND' AND m.agent_id IS NULL)
)
"""

# Two messages of one conversation never lie further apart than the auto-close delay, and a
# contact's next conversation starts after the previous one closed (else ingestion would have
# joined them).
GAPS = """
SELECT id FROM (
  SELECT id, sent_at - LAG(sent_at) OVER (PARTITION BY conversation_id ORDER BY sent_at) AS gap
  FROM message WHERE account_id = :account
) gaps WHERE gap >= 86400 OR gap <= 0
"""

CONTACT_OVERLAPS = """
SELECT id FROM (
  SELECT id, started_at,
         LAG(closed_at) OVER (PARTITION BY contact_id ORDER BY started_at) AS previous_closed,
         LAG(id) OVER (PARTITION BY contact_id ORDER BY started_at) AS previous
  FROM conversation WHERE account_id = :account
) pairs WHERE previous IS NOT NULL AND (previous_closed IS NULL OR previous_closed >= started_at)
"""

CLICKS = """
SELECT k.id FROM widget_click k
LEFT JOIN conversation c ON c.id = k.conversation_id
WHERE k.account_id = :account AND (
  (k.conversation_id IS NOT NULL AND (c.id IS NULL OR c.account_id <> :account
    OR c.widget_click_id <> k.id OR c.source <> 'INBOUND' OR k.clicked_at > c.started_at
    OR c.started_at - k.clicked_at > 7 * 86400))
  OR k.clicked_at > :end
)
"""


CHECKS = {
    "counters, started_at, last_message_at": MESSAGE_FIGURES,
    "first response": FIRST_RESPONSE,
    "direction, source and status": FIRST_AND_LAST_MESSAGE,
    "closing and rating": CLOSING_AND_RATING,
    "senders": SENDERS,
    "gaps": GAPS,
    "contact overlaps": CONTACT_OVERLAPS,
    "clicks": CLICKS,
}


async def violations(engine: AsyncEngine, account_id: int) -> dict[str, list[int]]:
    found = {}
    for name, sql in CHECKS.items():
        ids = [row[0] for row in await rows(engine, sql, account=account_id, end=END)]
        if ids:
            found[name] = sorted(ids)
    return found


async def test_generated_rows_obey_the_ingestion_rules(
    engine: AsyncEngine, paris: TestAccount
) -> None:
    assert await violations(engine, paris.id) == {}


async def test_the_checks_catch_broken_rows(engine: AsyncEngine, paris: TestAccount) -> None:
    """The checks above can fail: break one row for four of them and see exactly it flagged."""
    picked = await rows(
        engine,
        """SELECT id FROM conversation WHERE account_id = :a AND status = 'CLOSED'
           AND first_response_at IS NOT NULL ORDER BY id LIMIT 4""",
        a=paris.id,
    )
    one, two, three, four = (row[0] for row in picked)
    async with engine.begin() as connection:
        for sql, conversation in (
            ("UPDATE conversation SET inbound_count = inbound_count + 1 WHERE id = :c", one),
            (
                "UPDATE conversation SET first_response_at = first_response_at + 1 WHERE id = :c",
                two,
            ),
            ("UPDATE conversation SET status = 'OPEN' WHERE id = :c", three),
            ("UPDATE conversation SET rating = 6, rated_at = closed_at + 1 WHERE id = :c", four),
        ):
            await connection.execute(text(sql), {"c": conversation})
    assert await violations(engine, paris.id) == {
        "counters, started_at, last_message_at": [one],
        "first response": [two],
        "direction, source and status": [three],
        "closing and rating": [four],
    }


async def test_generated_inbox_has_every_kind_of_conversation(
    engine: AsyncEngine, paris: TestAccount
) -> None:
    account = paris.id
    assert (
        await scalar(engine, "SELECT COUNT(*) FROM conversation WHERE account_id = :a", a=account)
        == 300
    )
    # 30 days < 14 is false: 70 % of 300 conversations have a contact of their own.
    assert (
        await scalar(engine, "SELECT COUNT(*) FROM contact WHERE account_id = :a", a=account) == 210
    )
    assert await scalar(engine, "SELECT COUNT(*) FROM agent WHERE account_id = :a", a=account) == 12
    assert (
        await scalar(
            engine,
            "SELECT COUNT(*) FROM tag WHERE account_id = :a AND kind = 'conversation'",
            a=account,
        )
        == 8
    )
    assert (
        await scalar(engine, "SELECT COUNT(*) FROM widget_button WHERE account_id = :a", a=account)
        == 2
    )
    # 30 % of 300 = 90 clicks: a third (30) meant for conversations, 60 left unattributed.
    assert (
        await scalar(
            engine,
            "SELECT COUNT(*) FROM widget_click WHERE account_id = :a AND conversation_id IS NULL",
            a=account,
        )
        == 60
    )
    kinds = await rows(
        engine,
        """SELECT COUNT(DISTINCT source),
                  SUM(CASE WHEN auto_closed THEN 1 ELSE 0 END),
                  SUM(CASE WHEN closed_at IS NOT NULL AND NOT auto_closed THEN 1 ELSE 0 END),
                  SUM(CASE WHEN first_inbound_at IS NOT NULL AND first_response_at IS NULL
                      THEN 1 ELSE 0 END),
                  SUM(CASE WHEN rating IS NOT NULL THEN 1 ELSE 0 END),
                  SUM(CASE WHEN status <> 'CLOSED' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN widget_click_id IS NOT NULL THEN 1 ELSE 0 END),
                  MIN(started_at), MAX(started_at)
           FROM conversation WHERE account_id = :a""",
        a=account,
    )
    sources, auto, manual, unanswered, rated, open_, attributed, first, last = kinds[0]
    assert sources == 3
    assert min(auto, manual, unanswered, rated, open_, attributed) > 0
    assert first >= END - 30 * DAY and last < END
    automation = await scalar(
        engine,
        "SELECT COUNT(*) FROM message WHERE account_id = :a AND sender = 'automation'",
        a=account,
    )
    assert automation > 0
    tagged_contacts = await scalar(
        engine,
        "SELECT COUNT(DISTINCT contact_id) FROM contact_tag WHERE account_id = :a",
        a=account,
    )
    assert tagged_contacts > 0


async def test_rhythm_weekdays_busier_than_sundays_office_hours_than_nights(
    engine: AsyncEngine,
) -> None:
    account = await create_test_account(engine, "Demo", "UTC")
    # 28 days before Thursday 2026-01-01 00:00 UTC: four of each weekday.
    await generate(engine, account.id, conversations=1_000, days=28, seed=3, end=END, agents=3)
    by_day = dict(
        await rows(
            engine,
            """SELECT ((started_at / 86400) + 3) % 7 AS weekday, COUNT(*) FROM conversation
               WHERE account_id = :a GROUP BY ((started_at / 86400) + 3) % 7""",
            a=account.id,
        )
    )
    # weekday 0 is Monday (1970-01-01 was a Thursday); weights 1.2 (Tuesday) vs 0.3 (Sunday)
    assert by_day[1] > 3 * by_day[6]
    by_hour = dict(
        await rows(
            engine,
            """SELECT (started_at % 86400) / 3600 AS hour, COUNT(*) FROM conversation
               WHERE account_id = :a GROUP BY (started_at % 86400) / 3600""",
            a=account.id,
        )
    )
    assert by_hour[10] > 10 * by_hour.get(3, 0)


CONTENT = """
SELECT ct.phone, ct.name, c.started_at, c.source, c.status, c.direction, c.first_response_at,
       c.closed_at, c.auto_closed, c.rating, c.rated_at, c.message_count, a.email,
       (SELECT COUNT(*) FROM conversation_tag t WHERE t.conversation_id = c.id),
       (SELECT SUM(m.sent_at) FROM message m WHERE m.conversation_id = c.id),
       (SELECT k.clicked_at FROM widget_click k WHERE k.id = c.widget_click_id)
FROM conversation c JOIN contact ct ON ct.id = c.contact_id
LEFT JOIN agent a ON a.id = c.assignee_id
WHERE c.account_id = :a ORDER BY c.started_at, ct.phone
"""


async def test_same_seed_same_inbox_other_seed_other_inbox(engine: AsyncEngine) -> None:
    first = await create_test_account(engine, "One", "Europe/Paris")
    second = await create_test_account(engine, "Two", "Europe/Paris")
    third = await create_test_account(engine, "Three", "Europe/Paris")
    await generate(engine, first.id, conversations=150, days=20, seed=5, end=END, chunk_size=40)
    await generate(engine, second.id, conversations=150, days=20, seed=5, end=END, chunk_size=1000)
    await generate(engine, third.id, conversations=150, days=20, seed=6, end=END)
    one = await rows(engine, CONTENT, a=first.id)
    assert len(one) == 150
    assert one == await rows(engine, CONTENT, a=second.id)
    assert one != await rows(engine, CONTENT, a=third.id)


async def test_delete_account_removes_every_row(engine: AsyncEngine) -> None:
    keep = await create_test_account(engine, "Keep", "UTC")
    demo = await create_test_account(engine, "Demo", "UTC")
    await generate(engine, keep.id, conversations=20, days=3, seed=1, end=END)
    await generate(engine, demo.id, conversations=20, days=3, seed=1, end=END)
    assert await is_demo_account(engine, demo.id)
    await delete_account(engine, demo.id)
    for table in ("conversation", "message", "contact", "agent", "widget_click", "api_token"):
        count = f"SELECT COUNT(*) FROM {table} WHERE account_id = :a"
        assert await scalar(engine, count, a=demo.id) == 0, table
        assert await scalar(engine, count, a=keep.id) > 0, table
    assert await scalar(engine, "SELECT COUNT(*) FROM account WHERE id = :a", a=demo.id) == 0


async def test_an_account_with_a_real_channel_is_not_a_demo(engine: AsyncEngine) -> None:
    account = await create_test_account(engine, "Demo", "UTC")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO channel (account_id, phone_number_id, display_number, app_secret,"
                " verify_token) VALUES (:a, '1234567890', '+33100000000', 's', 'v')"
            ),
            {"a": account.id},
        )
    assert not await is_demo_account(engine, account.id)


async def test_agents_have_ascii_emails(engine: AsyncEngine, paris: TestAccount) -> None:
    emails = [row[0] for row in await rows(engine, "SELECT email FROM agent ORDER BY id")]
    assert emails[:5] == [
        "camille.martin@demo-shop.test",
        "louis.durand@demo-shop.test",
        "lea.garcia@demo-shop.test",  # Léa, last name 7 * 2 = 14th
        "hugo.girard@demo-shop.test",
        "chloe.bernard@demo-shop.test",
    ]
    assert all(email.isascii() for email in emails)


def test_demo_phones_are_distinct_e164_numbers() -> None:
    phones = {demo_phone(index, seed=1) for index in range(100_000)}
    assert len(phones) == 100_000
    assert demo_phone(0, seed=0) == "+33600000000"
    assert demo_phone(1, seed=0) == "+33607919113"
