"""The reports over rows written by the real ingestion paths (signed webhooks, inbox events, the
auto-close job) around Paris's 25-hour day, 2026-10-25: figures worked out by hand."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest.autoclose import close_due
from tests.conftest import create_test_account, graphql
from tests.factories import at
from tests.ingest.support import add_channel, inbound, post_events, post_webhook
from tests.reports.dataset import METRICS, ZERO, m

ANA, ANA_WA = "+33612345678", "33612345678"
BEN, BEN_WA = "+33611111111", "33611111111"
AL, BO = "al@x.io", "bo@x.io"

REPORTS = (
    METRICS
    + """
query ($f: ReportFilter!) {
  summaryReport(filter: $f) {
    totals { ...M } daily { start metrics { ...M } } bySource { source metrics { ...M } }
  }
  agentReport(filter: $f) { rows { agent { email } metrics { ...M } sentMessages } }
  tagReport(filter: $f) { rows { tag { name } metrics { ...M } } }
}
"""
)


def event(event_id: str, kind: str, instant: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "at": at(instant), **fields}


async def test_reports_over_ingested_rows(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    account = await create_test_account(engine, timezone="Europe/Paris")
    await add_channel(engine, account.id)

    async def events(*batch: dict[str, Any]) -> None:
        response = await post_events(client, account, list(batch))
        assert response.status_code == 200, response.text

    async def webhook(wamid: str, wa_id: str, instant: str) -> None:
        response = await post_webhook(client, inbound(wamid, wa_id, at(instant)))
        assert response.status_code == 200, response.text

    # A: Ana writes at 00:30 CEST on the 25th (22:30 UTC on the 24th); bo answers in 600 s.
    await webhook("wamid.a1", ANA_WA, "2026-10-24 22:30:00")
    await events(
        event("a2", "message.sent", "2026-10-24 22:40:00", phone=ANA, messageId="wamid.a2",
              agentEmail=BO),
        event("a3", "conversation.assigned", "2026-10-24 22:41:00", phone=ANA, agentEmail=BO),
        event("a4", "conversation.tagged", "2026-10-24 22:42:00", phone=ANA, tag="Sales"),
        event("a5", "conversation.closed", "2026-10-24 23:30:00", phone=ANA, agentEmail=BO),
        # Rated twice, delivered out of order: the latest instant (5) wins.
        event("a6", "conversation.rated", "2026-10-24 23:40:00", phone=ANA, rating=5),
        event("a7", "conversation.rated", "2026-10-24 23:35:00", phone=ANA, rating=3),
    )  # fmt: skip
    # B: a flow starts at 02:30 CET (01:30 UTC, the second 02:30 of the night); Ben answers the
    # bot, nobody else: unanswered, auto-closed 24 h after his message (26th 02:00 UTC).
    await events(
        event("b0", "conversation.started", "2026-10-25 01:30:00", phone=BEN, source="FLOW"),
        event("b1", "message.sent", "2026-10-25 01:30:00", phone=BEN, messageId="wamid.b1"),
    )
    await webhook("wamid.b2", BEN_WA, "2026-10-25 02:00:00")
    # C: Ana again at 23:59:59 CET, the last second of the 25th; al answers at 00:05:02 on the 26th.
    await webhook("wamid.c1", ANA_WA, "2026-10-25 22:59:59")
    await events(
        event("c2", "conversation.assigned", "2026-10-25 23:00:00", phone=ANA, agentEmail=AL),
        event("c3", "message.sent", "2026-10-25 23:05:02", phone=ANA, messageId="wamid.c3",
              agentEmail=AL),
    )  # fmt: skip
    await close_due(engine)  # closes B (26th 02:00 UTC) and C (26th 23:05:02 UTC)

    paris = {"from": "2026-10-24", "to": "2026-10-26"}
    body = await graphql(client, account, REPORTS, {"f": paris})
    assert body == {
        "data": {
            "summaryReport": {
                # Durations: A 3600, B 88200 (24.5 h), C 86703; first responses A 600, C 303.
                "totals": m(
                    conversations=3,
                    inbound_conversations=2,
                    distinct_contacts=2,
                    messages=6,
                    inbound_messages=3,
                    outbound_messages=3,
                    closed=3,
                    avg_duration=59501.0,
                    avg_first_response=451.5,
                    avg_rating=5.0,
                    rated=1,
                ),
                "daily": [
                    {"start": "2026-10-24", "metrics": ZERO},
                    {
                        "start": "2026-10-25",
                        "metrics": m(
                            conversations=3,
                            inbound_conversations=2,
                            distinct_contacts=2,
                            messages=5,
                            inbound_messages=3,
                            outbound_messages=2,
                            closed=3,
                            avg_duration=59501.0,
                            avg_first_response=451.5,
                            avg_rating=5.0,
                            rated=1,
                        ),
                    },
                    {
                        "start": "2026-10-26",
                        "metrics": m(
                            conversations=0,
                            inbound_conversations=0,
                            distinct_contacts=0,
                            messages=1,
                            inbound_messages=0,
                            outbound_messages=1,
                            closed=0,
                            avg_duration=None,
                            avg_first_response=None,
                            avg_rating=None,
                            rated=0,
                        ),
                    },
                ],
                "bySource": [
                    {
                        "source": "FLOW",
                        "metrics": m(
                            conversations=1,
                            inbound_conversations=0,
                            distinct_contacts=1,
                            messages=2,
                            inbound_messages=1,
                            outbound_messages=1,
                            closed=1,
                            avg_duration=88200.0,
                            avg_first_response=None,
                            avg_rating=None,
                            rated=0,
                        ),
                    },
                    {
                        "source": "INBOUND",
                        "metrics": m(
                            conversations=2,
                            inbound_conversations=2,
                            distinct_contacts=1,
                            messages=4,
                            inbound_messages=2,
                            outbound_messages=2,
                            closed=2,
                            avg_duration=45151.5,
                            avg_first_response=451.5,
                            avg_rating=5.0,
                            rated=1,
                        ),
                    },
                    {"source": "INBOX", "metrics": ZERO},
                ],
            },
            "agentReport": {
                "rows": [
                    {
                        "agent": {"email": "al@x.io"},
                        "metrics": m(
                            conversations=1,
                            inbound_conversations=1,
                            distinct_contacts=1,
                            messages=2,
                            inbound_messages=1,
                            outbound_messages=1,
                            closed=1,
                            avg_duration=86703.0,
                            avg_first_response=303.0,
                            avg_rating=None,
                            rated=0,
                        ),
                        "sentMessages": 1,
                    },
                    {
                        "agent": {"email": "bo@x.io"},
                        "metrics": m(
                            conversations=1,
                            inbound_conversations=1,
                            distinct_contacts=1,
                            messages=2,
                            inbound_messages=1,
                            outbound_messages=1,
                            closed=1,
                            avg_duration=3600.0,
                            avg_first_response=600.0,
                            avg_rating=5.0,
                            rated=1,
                        ),
                        "sentMessages": 1,
                    },
                ]
            },
            "tagReport": {
                "rows": [
                    {
                        "tag": {"name": "Sales"},
                        "metrics": m(
                            conversations=1,
                            inbound_conversations=1,
                            distinct_contacts=1,
                            messages=2,
                            inbound_messages=1,
                            outbound_messages=1,
                            closed=1,
                            avg_duration=3600.0,
                            avg_first_response=600.0,
                            avg_rating=5.0,
                            rated=1,
                        ),
                    }
                ]
            },
        }
    }

    body = await graphql(client, account, REPORTS, {"f": {**paris, "timezone": "UTC"}})
    assert body["data"]["summaryReport"]["daily"] == [
        {
            "start": "2026-10-24",
            "metrics": m(
                conversations=1,
                inbound_conversations=1,
                distinct_contacts=1,
                messages=2,
                inbound_messages=1,
                outbound_messages=1,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=600.0,
                avg_rating=5.0,
                rated=1,
            ),
        },
        {
            "start": "2026-10-25",
            "metrics": m(
                conversations=2,
                inbound_conversations=1,
                distinct_contacts=2,
                messages=4,
                inbound_messages=2,
                outbound_messages=2,
                closed=2,
                avg_duration=87451.5,
                avg_first_response=303.0,
                avg_rating=None,
                rated=0,
            ),
        },
        {"start": "2026-10-26", "metrics": ZERO},
    ]
