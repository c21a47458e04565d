"""Pricing categories (issue 19): each outbound message keeps the category and billable flag of
its latest status that carried a `pricing` (Meta's fixtures; the per-message model's `type`);
`summaryReport.pricing` counts the priced messages per category and contact country, once per
message however many statuses repeat it; statuses that wait for their message keep theirs."""

import copy
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.phones import country_of
from tests.conftest import TestAccount, graphql
from tests.ingest.support import messages, post_events, post_webhook, status_payload
from tests.ingest.test_webhook import FIXTURES, channel

__all__ = ["channel"]  # the fixture, used by name

SENT = json.loads((FIXTURES / "message_status__sent.json").read_text())  # 1698266945
DELIVERED = json.loads((FIXTURES / "message_status__delivered.json").read_text())  # 1698266945
READ = json.loads((FIXTURES / "message_status__read.json").read_text())  # 1689380458
FIXTURE_WAMID = "wamid.xyzxyz"
FIXTURE_PHONE = "+972987654321"  # the fixtures' recipient: Israel
T = 1_698_260_000  # 2023-10-25 18:53:20 UTC, before the fixtures' sent status
DAY = {"from": "2023-10-25", "to": "2023-10-25", "timezone": "UTC"}
PRICING = """query($f: ReportFilter!) {
  summaryReport(filter: $f) { pricing { category country messages billable } } }"""


def sent_event(
    serial: int, phone: str, at: int, wamid: str, agent: str | None = "ana@example.com"
) -> dict[str, Any]:
    event = {"id": f"e{serial}", "type": "message.sent", "at": at, "phone": phone}
    return {**event, "messageId": wamid, **({"agentEmail": agent} if agent else {})}


def priced(wamid: str, status: str, at: int, phone: str, **pricing: Any) -> dict[str, Any]:
    payload = status_payload(wamid, status, at, pricing=pricing)
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["recipient_id"] = phone[1:]
    return payload


def per_message(kind: str, category: str) -> dict[str, str]:
    """A pricing of the per-message model (July 2025): `type` instead of `billable`."""
    return {"pricing_model": "PMP", "type": kind, "category": category}


async def pricing(
    client: httpx.AsyncClient, account: TestAccount, flt: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    body = await graphql(client, account, PRICING, {"f": flt or DAY})
    assert "errors" not in body, body
    return body["data"]["summaryReport"]["pricing"]  # type: ignore[no-any-return]


async def test_pricing_counts_each_message_once_however_many_statuses_repeat_it(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    events = [sent_event(1, FIXTURE_PHONE, T, FIXTURE_WAMID)]
    assert (await post_events(client, account, events)).status_code == 200
    for payload in (SENT, DELIVERED, READ, SENT, copy.deepcopy(READ)):
        response = await post_webhook(client, payload)
        assert response.status_code == 200, response.text
    assert await pricing(client, account) == [
        {"category": "service", "country": "IL", "messages": 1, "billable": 1}
    ]
    [message] = await messages(engine)
    # The read status is dated July, before the sent one: the latest pricing is October's.
    assert (message.status, message.pricing_category, message.billable, message.pricing_at) == (
        "read",
        "service",
        True,
        1698266945,
    )


async def test_the_latest_status_that_carried_a_pricing_gives_it(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    """By the statuses' timestamps, not their arrival: a late status dated earlier changes
    nothing; a status without pricing keeps the one before; an unreadable pricing is left out,
    the status itself still applies. The per-message model's `type` says what is billed."""
    phone = "+12125550123"  # New York
    events = [sent_event(1, phone, T, "w-1")]
    assert (await post_events(client, account, events)).status_code == 200
    steps: list[tuple[dict[str, Any], tuple[str | None, str | None, bool | None]]] = [
        (
            priced("w-1", "sent", T + 10, phone, category="utility", billable=True),
            ("sent", "utility", True),
        ),
        (
            priced("w-1", "delivered", T + 30, phone, category="marketing", billable=False),
            ("delivered", "marketing", False),
        ),
        (
            priced("w-1", "sent", T + 20, phone, category="authentication", billable=True),
            ("delivered", "marketing", False),
        ),
        (status_payload("w-1", "read", T + 40), ("read", "marketing", False)),
        (
            priced("w-1", "read", T + 50, phone, category=7, billable="yes"),
            ("read", "marketing", False),
        ),
        (
            priced("w-1", "played", T + 60, phone, **per_message("regular", "Marketing_Lite")),
            ("played", "marketing_lite", True),
        ),
        (
            priced(
                "w-1", "played", T + 60, phone, **per_message("free_customer_service", "service")
            ),
            ("played", "service", False),
        ),
    ]
    for payload, expected in steps:
        response = await post_webhook(client, payload)
        assert response.status_code == 200, response.text
        [message] = await messages(engine)
        assert (message.status, message.pricing_category, message.billable) == expected
    assert await pricing(client, account) == [
        {"category": "service", "country": "US", "messages": 1, "billable": 0}
    ]


@pytest.mark.parametrize("order", ["in order", "out of order"])
async def test_a_pricing_that_arrives_before_its_message_is_kept_for_it(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int, order: str
) -> None:
    """Statuses that wait for their message keep their pricing: the latest one's is set when
    the message arrives, on both paths that record messages: the two orders take the bulk fold
    (`ingest.bulk`) and the general path (`ingest.conversations`) for `w-2`, each."""
    phone = "+447700900123"  # London
    for payload in (
        priced("w-2", "delivered", T + 300, phone, category="utility", billable=True),
        priced("w-2", "sent", T + 200, phone, category="marketing", billable=False),
        status_payload("w-2", "read", T + 400),
    ):
        assert (await post_webhook(client, payload)).status_code == 200
    events = [sent_event(1, phone, T + 100, "w-1"), sent_event(2, phone, T + 150, "w-2")]
    if order == "out of order":
        events.reverse()
    assert (await post_events(client, account, events)).status_code == 200
    found = {m.wamid: (m.status, m.pricing_category, m.billable) for m in await messages(engine)}
    assert found == {"w-1": (None, None, None), "w-2": ("read", "utility", True)}
    assert await pricing(client, account) == [
        {"category": "utility", "country": "GB", "messages": 1, "billable": 1}
    ]


async def test_pricing_rows_by_category_and_country_follow_the_filter(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount, channel: int
) -> None:
    """Worked by hand: Ana (FR) gets two marketing messages, one billed, and a service one;
    Bo (BR) a marketing one, billed, sent by another agent; a number of no region (a
    non-geographic +800) a service one; an inbound message or an outbound one without status
    has no pricing; a message the next day is out of range."""
    ana, bo, free = "+33612345678", "+5511987654321", "+80012345678"
    events = [
        sent_event(1, ana, T, "a-1"),
        sent_event(2, ana, T + 60, "a-2"),
        sent_event(3, ana, T + 120, "a-3"),
        sent_event(4, ana, T + 180, "a-4"),  # no status at all
        sent_event(5, bo, T, "b-1", agent="zed@example.com"),
        sent_event(6, free, T, "f-1"),
        sent_event(7, ana, T + 86_400, "a-next-day"),
    ]
    assert (await post_events(client, account, events)).status_code == 200
    for wamid, phone, category, billable in [
        ("a-1", ana, "marketing", True),
        ("a-2", ana, "marketing", False),
        ("a-3", ana, "service", False),
        ("b-1", bo, "marketing", True),
        ("f-1", free, "service", True),
        ("a-next-day", ana, "marketing", True),
    ]:
        for status in ("sent", "delivered"):
            payload = priced(
                wamid, status, T + 86_400 + 600, phone, category=category, billable=billable
            )
            assert (await post_webhook(client, payload)).status_code == 200
    assert await pricing(client, account) == [
        {"category": "marketing", "country": "FR", "messages": 2, "billable": 1},
        {"category": "marketing", "country": "BR", "messages": 1, "billable": 1},
        {"category": "service", "country": "FR", "messages": 1, "billable": 0},
        {"category": "service", "country": None, "messages": 1, "billable": 1},
    ]
    zed = {**DAY, "agentEmails": ["zed@example.com"]}
    assert await pricing(client, account, zed) == [
        {"category": "marketing", "country": "BR", "messages": 1, "billable": 1}
    ]
    two_days = {**DAY, "to": "2023-10-26"}
    assert (await pricing(client, account, two_days))[0] == {
        "category": "marketing",
        "country": "FR",
        "messages": 3,
        "billable": 2,
    }


@pytest.mark.parametrize(
    ("phone", "country"),
    [
        ("+33612345678", "FR"),
        ("+972987654321", "IL"),
        ("+12125550123", "US"),
        ("+14165550123", "CA"),  # +1 shared: Toronto's area code
        ("+15550001111", "US"),  # +1, no valid area code: the calling code's main region
        ("+79161234567", "RU"),
        ("+77011234567", "KZ"),  # +7 shared
        ("+80012345678", None),  # non-geographic
        ("+999123456", None),  # no such calling code
    ],
)
def test_country_of_a_number(phone: str, country: str | None) -> None:
    assert country_of(phone) == country
