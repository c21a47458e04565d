"""agentReport and tagReport over the hand-built dataset: every metric of every row and day, in
the account's zone (Europe/Paris) and in an explicit zone (UTC), plus their filters."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import graphql
from tests.reports.dataset import METRICS, RANGE, build_dataset, daily, m

AGENTS = (
    METRICS
    + """
query ($filter: ReportFilter!) {
  agentReport(filter: $filter) {
    rows { agent { email name } metrics { ...M } sentMessages daily { start metrics { ...M } } }
  }
}
"""
)

TAGS = (
    METRICS
    + """
query ($filter: ReportFilter!) {
  tagReport(filter: $filter) {
    rows { tag { name } metrics { ...M } daily { start metrics { ...M } } }
  }
}
"""
)

ELEVEN_THIRDS = 3.6666666666666665
ALICE = {"email": "alice@acme.test", "name": "Alice"}
BOB = {"email": "bob@acme.test", "name": "Bob"}
CAROL = {"email": "carol@acme.test", "name": None}

ALICE_PARIS = {
    # K1, K5 started in range; messages of K0 (alice's, started 03-26), K1 and K5.
    "agent": ALICE,
    "metrics": m(
        conversations=2,
        inbound_conversations=1,
        distinct_contacts=2,
        messages=10,
        inbound_messages=4,
        outbound_messages=6,
        closed=2,
        avg_duration=3600.0,
        avg_first_response=510.0,
        avg_rating=3.5,
        rated=2,
    ),
    # K0 06:10, K1 08:02 and 08:20, K5 07:20, and 12:03 in K6 which is bob's now.
    "sentMessages": 5,
    "daily": daily(
        {
            "2026-03-27": m(
                conversations=1,
                inbound_conversations=1,
                distinct_contacts=1,
                messages=6,
                inbound_messages=3,
                outbound_messages=3,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=120.0,
                avg_rating=5.0,
                rated=1,
            ),
            "2026-03-30": m(
                conversations=1,
                inbound_conversations=0,
                distinct_contacts=1,
                messages=4,
                inbound_messages=1,
                outbound_messages=3,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=900.0,
                avg_rating=2.0,
                rated=1,
            ),
        }
    ),
}

PARIS_AGENTS: list[dict[str, Any]] = [
    {
        "agent": BOB,
        "metrics": m(
            conversations=3,
            inbound_conversations=2,
            distinct_contacts=3,
            messages=8,
            inbound_messages=3,
            outbound_messages=5,
            closed=1,
            avg_duration=4200.0,
            avg_first_response=1260.0,
            avg_rating=None,
            rated=0,
        ),
        "sentMessages": 4,
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=1,
                    inbound_messages=1,
                    outbound_messages=0,
                    closed=1,
                    avg_duration=4200.0,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-03-28": m(
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
                "2026-03-29": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=2,
                    inbound_messages=1,
                    outbound_messages=1,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-03-30": m(
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
                "2026-03-31": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=3,
                    inbound_messages=1,
                    outbound_messages=2,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=180.0,
                    avg_rating=None,
                    rated=0,
                ),
            }
        ),
    },
    ALICE_PARIS,
    {
        "agent": CAROL,
        "metrics": m(
            conversations=1,
            inbound_conversations=1,
            distinct_contacts=1,
            messages=3,
            inbound_messages=2,
            outbound_messages=1,
            closed=1,
            avg_duration=3600.0,
            avg_first_response=300.0,
            avg_rating=4.0,
            rated=1,
        ),
        "sentMessages": 1,
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=3,
                    inbound_messages=2,
                    outbound_messages=1,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=300.0,
                    avg_rating=4.0,
                    rated=1,
                )
            }
        ),
    },
]

UTC_AGENTS: list[dict[str, Any]] = [
    # alice and bob both have 3 conversations: e-mail order. carol's K8 is on 03-26 in UTC.
    {
        "agent": ALICE,
        "metrics": m(
            conversations=3,
            inbound_conversations=2,
            distinct_contacts=3,
            messages=12,
            inbound_messages=5,
            outbound_messages=7,
            closed=2,
            avg_duration=3600.0,
            avg_first_response=540.0,
            avg_rating=3.5,
            rated=2,
        ),
        "sentMessages": 6,
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=6,
                    inbound_messages=3,
                    outbound_messages=3,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=120.0,
                    avg_rating=5.0,
                    rated=1,
                ),
                "2026-03-30": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=4,
                    inbound_messages=1,
                    outbound_messages=3,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=900.0,
                    avg_rating=2.0,
                    rated=1,
                ),
                "2026-04-02": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=2,
                    inbound_messages=1,
                    outbound_messages=1,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=600.0,
                    avg_rating=None,
                    rated=0,
                ),
            }
        ),
    },
    {
        "agent": BOB,
        "metrics": m(
            conversations=3,
            inbound_conversations=2,
            distinct_contacts=3,
            messages=8,
            inbound_messages=3,
            outbound_messages=5,
            closed=1,
            avg_duration=4200.0,
            avg_first_response=1260.0,
            avg_rating=None,
            rated=0,
        ),
        "sentMessages": 4,
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=2,
                    inbound_messages=1,
                    outbound_messages=1,
                    closed=1,
                    avg_duration=4200.0,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-03-29": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=3,
                    inbound_messages=1,
                    outbound_messages=2,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-03-31": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=3,
                    inbound_messages=1,
                    outbound_messages=2,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=180.0,
                    avg_rating=None,
                    rated=0,
                ),
            }
        ),
    },
]

PARIS_TAGS: list[dict[str, Any]] = [
    {
        # K8, K1, K5; messages of K0 (Sales, started 03-26) too.
        "tag": {"name": "Sales"},
        "metrics": m(
            conversations=3,
            inbound_conversations=2,
            distinct_contacts=3,
            messages=13,
            inbound_messages=6,
            outbound_messages=7,
            closed=3,
            avg_duration=3600.0,
            avg_first_response=440.0,
            avg_rating=ELEVEN_THIRDS,
            rated=3,
        ),
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=2,
                    inbound_conversations=2,
                    distinct_contacts=2,
                    messages=9,
                    inbound_messages=5,
                    outbound_messages=4,
                    closed=2,
                    avg_duration=3600.0,
                    avg_first_response=210.0,
                    avg_rating=4.5,
                    rated=2,
                ),
                "2026-03-30": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=4,
                    inbound_messages=1,
                    outbound_messages=3,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=900.0,
                    avg_rating=2.0,
                    rated=1,
                ),
            }
        ),
    },
    {
        # K1 (also in Sales) and K4.
        "tag": {"name": "Billing"},
        "metrics": m(
            conversations=2,
            inbound_conversations=1,
            distinct_contacts=2,
            messages=7,
            inbound_messages=3,
            outbound_messages=4,
            closed=1,
            avg_duration=3600.0,
            avg_first_response=960.0,
            avg_rating=5.0,
            rated=1,
        ),
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=4,
                    inbound_messages=2,
                    outbound_messages=2,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=120.0,
                    avg_rating=5.0,
                    rated=1,
                ),
                "2026-03-29": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=2,
                    inbound_messages=1,
                    outbound_messages=1,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-03-30": m(
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
            }
        ),
    },
    {
        # K2; K7 is on 04-03 in Paris.
        "tag": {"name": "Support"},
        "metrics": m(
            conversations=1,
            inbound_conversations=1,
            distinct_contacts=1,
            messages=2,
            inbound_messages=1,
            outbound_messages=1,
            closed=1,
            avg_duration=4200.0,
            avg_first_response=1800.0,
            avg_rating=None,
            rated=0,
        ),
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=1,
                    inbound_messages=1,
                    outbound_messages=0,
                    closed=1,
                    avg_duration=4200.0,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-03-28": m(
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
            }
        ),
    },
]

UTC_TAGS: list[dict[str, Any]] = [
    # Two conversations each: name order.
    {
        "tag": {"name": "Billing"},
        "metrics": m(
            conversations=2,
            inbound_conversations=1,
            distinct_contacts=2,
            messages=7,
            inbound_messages=3,
            outbound_messages=4,
            closed=1,
            avg_duration=3600.0,
            avg_first_response=960.0,
            avg_rating=5.0,
            rated=1,
        ),
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=4,
                    inbound_messages=2,
                    outbound_messages=2,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=120.0,
                    avg_rating=5.0,
                    rated=1,
                ),
                "2026-03-29": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=3,
                    inbound_messages=1,
                    outbound_messages=2,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
            }
        ),
    },
    {
        "tag": {"name": "Sales"},
        "metrics": m(
            conversations=2,
            inbound_conversations=1,
            distinct_contacts=2,
            messages=10,
            inbound_messages=4,
            outbound_messages=6,
            closed=2,
            avg_duration=3600.0,
            avg_first_response=510.0,
            avg_rating=3.5,
            rated=2,
        ),
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=6,
                    inbound_messages=3,
                    outbound_messages=3,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=120.0,
                    avg_rating=5.0,
                    rated=1,
                ),
                "2026-03-30": m(
                    conversations=1,
                    inbound_conversations=0,
                    distinct_contacts=1,
                    messages=4,
                    inbound_messages=1,
                    outbound_messages=3,
                    closed=1,
                    avg_duration=3600.0,
                    avg_first_response=900.0,
                    avg_rating=2.0,
                    rated=1,
                ),
            }
        ),
    },
    {
        "tag": {"name": "Support"},
        "metrics": m(
            conversations=2,
            inbound_conversations=2,
            distinct_contacts=2,
            messages=4,
            inbound_messages=2,
            outbound_messages=2,
            closed=1,
            avg_duration=4200.0,
            avg_first_response=1200.0,
            avg_rating=None,
            rated=0,
        ),
        "daily": daily(
            {
                "2026-03-27": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=2,
                    inbound_messages=1,
                    outbound_messages=1,
                    closed=1,
                    avg_duration=4200.0,
                    avg_first_response=1800.0,
                    avg_rating=None,
                    rated=0,
                ),
                "2026-04-02": m(
                    conversations=1,
                    inbound_conversations=1,
                    distinct_contacts=1,
                    messages=2,
                    inbound_messages=1,
                    outbound_messages=1,
                    closed=0,
                    avg_duration=None,
                    avg_first_response=600.0,
                    avg_rating=None,
                    rated=0,
                ),
            }
        ),
    },
]


async def test_agent_report_in_the_account_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, AGENTS, {"filter": RANGE})
    assert body == {"data": {"agentReport": {"rows": PARIS_AGENTS}}}


async def test_agent_report_in_an_explicit_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, AGENTS, {"filter": {**RANGE, "timezone": "UTC"}})
    assert body == {"data": {"agentReport": {"rows": UTC_AGENTS}}}


async def test_tag_report_in_the_account_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, TAGS, {"filter": RANGE})
    assert body == {"data": {"tagReport": {"rows": PARIS_TAGS}}}


async def test_tag_report_in_an_explicit_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, TAGS, {"filter": {**RANGE, "timezone": "UTC"}})
    assert body == {"data": {"tagReport": {"rows": UTC_TAGS}}}


async def test_agent_filter_selects_rows_but_not_sent_messages(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(
        client, data.account, AGENTS, {"filter": {**RANGE, "agentEmails": ["ALICE@acme.TEST"]}}
    )
    # sentMessages still counts alice's reply in K6, assigned to bob.
    assert body["data"]["agentReport"]["rows"] == [ALICE_PARIS]


async def test_agent_report_with_source_and_tag_filters(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    query = (
        METRICS
        + """query ($f: ReportFilter!) {
          agentReport(filter: $f) { rows { agent { email } metrics { ...M } sentMessages } }
        }"""
    )
    body = await graphql(client, data.account, query, {"f": {**RANGE, "sources": ["FLOW"]}})
    # Only K5 is a FLOW conversation with an assignee; sentMessages ignores the source filter.
    assert body["data"]["agentReport"]["rows"] == [
        {
            "agent": {"email": "alice@acme.test"},
            "metrics": m(
                conversations=1,
                inbound_conversations=0,
                distinct_contacts=1,
                messages=4,
                inbound_messages=1,
                outbound_messages=3,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=900.0,
                avg_rating=2.0,
                rated=1,
            ),
            "sentMessages": 5,
        }
    ]
    body = await graphql(client, data.account, query, {"f": {**RANGE, "contactTags": ["vip"]}})
    # VIP contacts c1 and c2: alice has K1 and K5 (+ K0's messages), bob has K2.
    assert body["data"]["agentReport"]["rows"] == [
        {
            "agent": {"email": "alice@acme.test"},
            "metrics": m(
                conversations=2,
                inbound_conversations=1,
                distinct_contacts=2,
                messages=10,
                inbound_messages=4,
                outbound_messages=6,
                closed=2,
                avg_duration=3600.0,
                avg_first_response=510.0,
                avg_rating=3.5,
                rated=2,
            ),
            "sentMessages": 5,
        },
        {
            "agent": {"email": "bob@acme.test"},
            "metrics": m(
                conversations=1,
                inbound_conversations=1,
                distinct_contacts=1,
                messages=2,
                inbound_messages=1,
                outbound_messages=1,
                closed=1,
                avg_duration=4200.0,
                avg_first_response=1800.0,
                avg_rating=None,
                rated=0,
            ),
            "sentMessages": 4,
        },
    ]


async def test_tag_report_with_a_conversation_tag_filter(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    query = (
        METRICS
        + """query ($f: ReportFilter!) {
          tagReport(filter: $f) { rows { tag { name } metrics { ...M } } }
        }"""
    )
    body = await graphql(
        client, data.account, query, {"f": {**RANGE, "conversationTags": ["BILLING"]}}
    )
    # K1 and K4 have Billing; K1 also has Sales, so Sales shows K1 alone (K0 lacks Billing).
    assert body["data"]["tagReport"]["rows"] == [
        {
            "tag": {"name": "Billing"},
            "metrics": m(
                conversations=2,
                inbound_conversations=1,
                distinct_contacts=2,
                messages=7,
                inbound_messages=3,
                outbound_messages=4,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=960.0,
                avg_rating=5.0,
                rated=1,
            ),
        },
        {
            "tag": {"name": "Sales"},
            "metrics": m(
                conversations=1,
                inbound_conversations=1,
                distinct_contacts=1,
                messages=4,
                inbound_messages=2,
                outbound_messages=2,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=120.0,
                avg_rating=5.0,
                rated=1,
            ),
        },
    ]
    body = await graphql(client, data.account, query, {"f": {**RANGE, "agentEmails": ["nobody@x"]}})
    assert body["data"]["tagReport"]["rows"] == []


async def test_other_account_rows_never_show(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    query = """query ($f: ReportFilter!) {
      agentReport(filter: $f) { rows { agent { name } sentMessages metrics { conversations } } }
      tagReport(filter: $f) { rows { tag { name } metrics { conversations messages } } }
    }"""
    body = await graphql(client, data.other, query, {"f": RANGE})
    assert body["data"] == {
        "agentReport": {
            "rows": [
                {
                    "agent": {"name": "Other Alice"},
                    "sentMessages": 1,
                    "metrics": {"conversations": 1},
                }
            ]
        },
        "tagReport": {
            "rows": [{"tag": {"name": "Sales"}, "metrics": {"conversations": 1, "messages": 2}}]
        },
    }
