"""summaryReport.heatmap (issue 17): the 168 local hours of the week over the hand-built dataset
(Paris, with its 23-hour day 2026-03-29), over a 25-hour day, in another zone and filtered."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import create_test_account, graphql
from tests.factories import at, building, inbound, reply
from tests.reports.dataset import RANGE, build_dataset

HEATMAP = """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals { conversations messages inboundMessages }
    heatmap {
      weekday hour
      metrics { conversations messages inboundMessages avgFirstResponseSeconds distinctContacts }
    }
  }
}
"""
MONDAY, TUESDAY, FRIDAY, SATURDAY, SUNDAY = 1, 2, 5, 6, 7


def cells(report: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    """The heatmap's cells that hold something, by (weekday, hour), after checking that all 168
    come in order."""
    heatmap = report["heatmap"]
    assert [(cell["weekday"], cell["hour"]) for cell in heatmap] == [
        (weekday, hour) for weekday in range(1, 8) for hour in range(24)
    ]
    return {
        (cell["weekday"], cell["hour"]): cell["metrics"]
        for cell in heatmap
        if cell["metrics"]["conversations"] or cell["metrics"]["messages"]
    }


def figures(
    conversations: int, messages: int, inbound: int, first_response: float | None, contacts: int
) -> dict[str, Any]:
    return {
        "conversations": conversations,
        "messages": messages,
        "inboundMessages": inbound,
        "avgFirstResponseSeconds": first_response,
        "distinctContacts": contacts,
    }


async def test_heatmap_in_the_account_zone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Worked out by hand from the dataset's UTC instants (Paris: UTC+1, then UTC+2 from
    03-29 01:00 UTC). Conversations by local start, messages by local sending."""
    data = await build_dataset(engine)
    body = await graphql(client, data.account, HEATMAP, {"filter": RANGE})
    report = body["data"]["summaryReport"]
    assert cells(report) == {
        # Friday 03-27: K8 starts 00:30 (its 3 messages); K0's two messages at 07:00 and 07:10;
        # K1 starts 09:00 (4 messages, answered in 120 s); K2 starts 23:50 (answered in 1800 s,
        # by a reply that falls on Saturday 00:20).
        (FRIDAY, 0): figures(1, 3, 2, 300.0, 1),
        (FRIDAY, 7): figures(0, 2, 1, None, 0),
        (FRIDAY, 9): figures(1, 4, 2, 120.0, 1),
        (FRIDAY, 23): figures(1, 1, 1, 1800.0, 1),
        (SATURDAY, 0): figures(0, 1, 0, None, 0),
        # Sunday 03-29, 23 hours: K3's automation at 01:30 (UTC+1), the contact at 03:30
        # (UTC+2): 02:00-03:00 never happened. K4 starts 23:30 (bob, then the contact at 23:45;
        # bob's answer at 00:15 is Monday's).
        (SUNDAY, 1): figures(1, 1, 0, None, 1),
        (SUNDAY, 3): figures(0, 1, 1, None, 0),
        (SUNDAY, 23): figures(1, 2, 1, 1800.0, 1),
        (MONDAY, 0): figures(0, 1, 0, None, 0),
        # Monday 03-30: K5 at 09:00 (the contact at 09:05, alice at 09:20: 900 s).
        (MONDAY, 9): figures(1, 4, 1, 900.0, 1),
        # Tuesday 03-31: K6 at 14:00 (alice at 14:03: 180 s).
        (TUESDAY, 14): figures(1, 3, 1, 180.0, 1),
    }
    sums = {
        name: sum(cell["metrics"][name] for cell in report["heatmap"])
        for name in ("conversations", "messages", "inboundMessages")
    }
    assert sums == report["totals"] == {"conversations": 7, "messages": 23, "inboundMessages": 10}


async def test_heatmap_in_another_zone_and_filtered(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    # In UTC, alice's conversations: K1 (Friday 08:00), K5 (Monday 07:00) and K7 (Thursday
    # 04-02 22:30, in range in UTC); K0 started before the range, its two messages count.
    filter_ = {**RANGE, "timezone": "UTC", "agentEmails": ["ALICE@acme.test"]}
    body = await graphql(client, data.account, HEATMAP, {"filter": filter_})
    assert cells(body["data"]["summaryReport"]) == {
        (FRIDAY, 6): figures(0, 2, 1, None, 0),
        (FRIDAY, 8): figures(1, 4, 2, 120.0, 1),
        (MONDAY, 7): figures(1, 4, 1, 900.0, 1),
        (4, 22): figures(1, 2, 1, 600.0, 1),
    }


async def test_the_repeated_hour_counts_once_per_occurrence(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Paris, Sunday 2026-10-25 (25 hours): 02:00-03:00 happens at 00:00 UTC (CEST) and again
    at 01:00 UTC (CET); a conversation in each lands in hour 2, one at 02:30 UTC in hour 3."""
    account = await create_test_account(engine, name="Autumn", timezone="Europe/Paris")
    async with building(engine, account.id) as make:
        agent = await make.agent("ana@autumn.test")
        for number, instant in enumerate(("00:30", "01:30", "02:30")):
            contact = await make.contact(f"+3360000010{number}")
            start = at(f"2026-10-25 {instant}", "UTC")
            await make.conversation(
                contact, [inbound(start), reply(start + 60, agent)], assignee=agent
            )
    filter_ = {"from": "2026-10-25", "to": "2026-10-25"}
    body = await graphql(client, account, HEATMAP, {"filter": filter_})
    assert cells(body["data"]["summaryReport"]) == {
        (SUNDAY, 2): figures(2, 4, 2, 60.0, 2),
        (SUNDAY, 3): figures(1, 2, 1, 60.0, 1),
    }
