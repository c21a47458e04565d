"""The ad report (issue 19): the conversations whose first message came from a
click-to-WhatsApp ad, from Meta's referral payload (the shared fixture and a second ad), in
total, per day and per ad; the `adSourceIds` drill-down; the ADS CSV. Both engines."""

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TestAccount, graphql
from tests.ingest.support import add_channel, inbound, post_events, post_webhook
from tests.ingest.test_webhook import FIXTURES
from tests.reports.test_export import export_rows

FIXTURE = FIXTURES / "message__referral.json"
T = 1697045000  # the fixture's message: 2023-10-11 17:23:20 UTC
DAYS = {"from": "2023-10-11", "to": "2023-10-12", "timezone": "UTC"}
FIGURES = "conversations messages"
REPORT = f"""query($f: ReportFilter!) {{ adReport(filter: $f) {{
  range {{ from to }} totals {{ {FIGURES} }} daily {{ start metrics {{ {FIGURES} }} }}
  byAd {{ sourceId sourceType headline sourceUrl metrics {{ {FIGURES} }} }} }} }}"""


def from_ad(wamid: str, wa_id: str, at: int, source_id: str, headline: str) -> dict[str, Any]:
    """An inbound message carrying a referral, shaped as the fixture's."""
    payload = inbound(wamid, wa_id, at)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = {
        "source_url": f"https://fb.me/{source_id}",
        "source_id": source_id,
        "source_type": "ad",
        "headline": headline,
        "ctwa_clid": f"clid-{wamid}",
    }
    return payload


async def seed(client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount) -> None:
    await add_channel(engine, account.id)
    deliveries: list[bytes | dict[str, Any]] = [
        FIXTURE.read_bytes(),  # ADID, 2023-10-11
        from_ad("w-ad2", "33600000002", T + 3600, "AD-2", "Winter sale"),
        from_ad("w-adid-2", "33600000003", T + 86400, "ADID", "AD_TITLE, new"),  # 10-12
        inbound("w-plain", "33600000004", T + 600),  # no ad: not in the report
    ]
    for payload in deliveries:
        assert (await post_webhook(client, payload)).status_code == 200
    reply = {
        "id": "e-reply",
        "type": "message.sent",
        "at": T + 3700,
        "phone": "+33600000002",
        "messageId": "w-reply",
        "agentEmail": "ana@acme.test",
    }
    assert (await post_events(client, account, [reply])).status_code == 200


async def test_the_ad_report_worked_by_hand(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(client, engine, account)
    body = await graphql(client, account, REPORT, {"f": DAYS})
    assert body == {
        "data": {
            "adReport": {
                "range": {"from": "2023-10-11", "to": "2023-10-12"},
                "totals": {"conversations": 3, "messages": 4},
                "daily": [
                    {"start": "2023-10-11", "metrics": {"conversations": 2, "messages": 3}},
                    {"start": "2023-10-12", "metrics": {"conversations": 1, "messages": 1}},
                ],
                "byAd": [
                    {
                        "sourceId": "ADID",
                        "sourceType": "ad",  # the latest conversation's (10-12)
                        "headline": "AD_TITLE, new",
                        "sourceUrl": "https://fb.me/ADID",
                        "metrics": {"conversations": 2, "messages": 2},
                    },
                    {
                        "sourceId": "AD-2",
                        "sourceType": "ad",
                        "headline": "Winter sale",
                        "sourceUrl": "https://fb.me/AD-2",
                        "metrics": {"conversations": 1, "messages": 2},
                    },
                ],
            }
        }
    }
    # The drill-down: the conversations of one ad, in any report.
    drilled = {**DAYS, "adSourceIds": ["AD-2"]}
    query = """query($f: ReportFilter!) { summaryReport(filter: $f) { totals { conversations } }
      conversationDetails(filter: $f) { edges { node { contact { phone } } } } }"""
    found = (await graphql(client, account, query, {"f": drilled}))["data"]
    assert found["summaryReport"]["totals"]["conversations"] == 1
    assert found["conversationDetails"]["edges"] == [
        {"node": {"contact": {"phone": "+33600000002"}}}
    ]
    everything = await graphql(client, account, query, {"f": DAYS})
    assert everything["data"]["summaryReport"]["totals"]["conversations"] == 4


async def test_the_ads_csv(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(client, engine, account)
    rows = await export_rows(client, account, "ADS", DAYS)
    header = rows[0]
    assert header[:6] == ["section", "start", "source_id", "source_type", "headline", "source_url"]
    at = {name: header.index(name) for name in ("conversations", "messages")}
    picked = [[*row[:3], row[at["conversations"]], row[at["messages"]]] for row in rows[1:]]
    assert picked == [
        ["daily", "2023-10-11", "", "2", "3"],
        ["daily", "2023-10-12", "", "1", "1"],
        ["ad", "", "ADID", "2", "2"],
        ["ad", "", "AD-2", "1", "2"],
        ["total", "", "", "3", "4"],
    ]
    assert rows[3][4] == "AD_TITLE, new"


async def test_a_bad_ad_filter_is_refused(client: httpx.AsyncClient, account: TestAccount) -> None:
    body = await graphql(client, account, REPORT, {"f": {**DAYS, "adSourceIds": [""]}})
    assert body["errors"][0]["extensions"]["field"] == "filter.adSourceIds"
    assert json.dumps(body).count("BAD_USER_INPUT") == 1
