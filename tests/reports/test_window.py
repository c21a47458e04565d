"""The 24-hour customer-service window (issue 19), worked out by hand through HTTP on both
engines: a reply at 23 h 59 min is in time; an automation's reply counts; a reply one second
late, no reply at all, and a second message left unanswered miss it; a conversation still
within its window is not counted until the auto-close job's pass finds it ran out."""

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest.autoclose import close_due
from models.db import now
from tests.conftest import TestAccount, create_test_account, graphql
from tests.ingest.support import add_channel, inbound, post_events, post_webhook
from tests.reports.test_service_levels import assert_kept_equals_rebuilt

T = 1_780_000_000  # Thursday 28 May 2026, 20:26:40 UTC
DAY = 86_400
RANGE = {"from": "2026-05-28", "to": "2026-05-28", "timezone": "UTC"}
QUERY = """query($f: ReportFilter!) {
  summaryReport(filter: $f) { totals { conversations windowMissedConversations } }
  conversationDetails(filter: $f) { edges { node { contact { phone } windowMissed } } } }"""


class Inbox:
    def __init__(self, client: httpx.AsyncClient, who: TestAccount) -> None:
        self.client, self.who, self.serial = client, who, 0

    async def writes(self, phone: str, at: int) -> None:
        self.serial += 1
        payload = inbound(f"w-{self.who.id}-{self.serial}", phone, at)
        assert (await post_webhook(self.client, payload)).status_code == 200

    async def replies(self, phone: str, at: int, agent: str | None = "ana@acme.test") -> None:
        self.serial += 1
        event: dict[str, Any] = {
            "id": f"e-{self.serial}",
            "type": "message.sent",
            "at": at,
            "phone": "+" + phone,
            "messageId": f"o-{self.who.id}-{self.serial}",
        }
        if agent is not None:
            event["agentEmail"] = agent
        assert (await post_events(self.client, self.who, [event])).status_code == 200

    async def report(self, flt: dict[str, str]) -> tuple[dict[str, int], dict[str, bool]]:
        body = await graphql(self.client, self.who, QUERY, {"f": flt})
        assert "errors" not in body, body
        data = body["data"]
        edges = data["conversationDetails"]["edges"]
        missed = {edge["node"]["contact"]["phone"]: edge["node"]["windowMissed"] for edge in edges}
        return data["summaryReport"]["totals"], missed


async def test_the_window_worked_by_hand(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    who = await create_test_account(engine, "Window", "UTC", auto_close_hours=24 * 3650)
    await add_channel(engine, who.id)
    inbox = Inbox(client, who)
    await inbox.writes("33600000001", T)
    await inbox.replies("33600000001", T + DAY - 60)  # 23 h 59 min: in time
    await inbox.writes("33600000002", T)
    await inbox.replies("33600000002", T + DAY + 1, agent=None)  # an automation, 1 s late
    await inbox.writes("33600000003", T)  # never answered
    await inbox.writes("33600000004", T)
    await inbox.replies("33600000004", T + 600, agent=None)  # an automation's reply counts
    await inbox.writes("33600000004", T + 3600)  # the second message is left unanswered
    totals, missed = await inbox.report(RANGE)
    assert totals == {"conversations": 4, "windowMissedConversations": 3}
    assert missed == {
        "+33600000001": False,
        "+33600000002": True,
        "+33600000003": True,
        "+33600000004": True,
    }
    await assert_kept_equals_rebuilt(engine, who.id)


async def test_the_window_runs_out_while_waiting(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    who = await create_test_account(engine, "Waiting", "UTC", auto_close_hours=24 * 3650)
    await add_channel(engine, who.id)
    inbox = Inbox(client, who)
    start = now() - 60
    await inbox.writes("33600000005", start)
    day = datetime.fromtimestamp(start, UTC).date().isoformat()
    today = {"from": day, "to": day, "timezone": "UTC"}
    assert (await inbox.report(today))[0]["windowMissedConversations"] == 0
    await close_due(engine, now=start + DAY)  # exactly 24 h: not yet run out
    assert (await inbox.report(today))[0]["windowMissedConversations"] == 0
    await close_due(engine, now=start + DAY + 30)
    totals, missed = await inbox.report(today)
    assert (totals["windowMissedConversations"], missed) == (1, {"+33600000005": True})
    await assert_kept_equals_rebuilt(engine, who.id)
