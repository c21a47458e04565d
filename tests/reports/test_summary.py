"""summaryReport over the hand-built dataset: every metric of totals, days, weeks and sources,
in the account's zone (Europe/Paris, with its 23-hour day) and in an explicit zone (UTC)."""

from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.buckets import calendar
from tests.conftest import graphql
from tests.reports.dataset import (
    ENGAGEMENT,
    METRICS,
    RANGE,
    UNDELIVERABLE,
    ZERO,
    build_dataset,
    daily,
    m,
)

SUMMARY = (
    METRICS
    + """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals { ...M }
    daily { start metrics { ...M } }
    weekly { start metrics { ...M } }
    bySource { source metrics { ...M } }
  }
}
"""
)

ELEVEN_THIRDS = 3.6666666666666665  # (4 + 5 + 2) / 3 as a double

PARIS_SUMMARY: dict[str, Any] = {
    # K8 K1 K2 | K3 K4 | K5 | K6 started in range; messages of K0 (started 03-26) count too.
    "totals": m(
        conversations=7,
        inbound_conversations=4,
        distinct_contacts=5,
        messages=23,
        inbound_messages=10,
        outbound_messages=13,
        closed=5,
        avg_duration=21000.0,
        avg_first_response=850.0,
        avg_rating=ELEVEN_THIRDS,
        rated=3,
    ),
    "daily": daily(
        {
            # K8 (00:30 local), K1, K2 (23:50 local); K0's 2 messages, K2's reply falls on 03-28.
            "2026-03-27": m(
                conversations=3,
                inbound_conversations=3,
                distinct_contacts=3,
                messages=10,
                inbound_messages=6,
                outbound_messages=4,
                closed=3,
                avg_duration=3800.0,
                avg_first_response=740.0,
                avg_rating=4.5,
                rated=2,
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
            # The 23-hour day: K3 at 01:30 CET, K4 at 23:30 CEST; K4's 00:15 reply is on 03-30.
            "2026-03-29": m(
                conversations=2,
                inbound_conversations=0,
                distinct_contacts=2,
                messages=4,
                inbound_messages=2,
                outbound_messages=2,
                closed=1,
                avg_duration=90000.0,
                avg_first_response=1800.0,
                avg_rating=None,
                rated=0,
            ),
            "2026-03-30": m(
                conversations=1,
                inbound_conversations=0,
                distinct_contacts=1,
                messages=5,
                inbound_messages=1,
                outbound_messages=4,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=900.0,
                avg_rating=2.0,
                rated=1,
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
    "weekly": [
        # Week of Monday 03-23 clipped to 03-27; c4 (K8, K4) counted once in the week.
        {
            "start": "2026-03-27",
            "metrics": m(
                conversations=5,
                inbound_conversations=3,
                distinct_contacts=4,
                messages=15,
                inbound_messages=8,
                outbound_messages=7,
                closed=4,
                avg_duration=25350.0,
                avg_first_response=1005.0,
                avg_rating=4.5,
                rated=2,
            ),
        },
        {
            "start": "2026-03-30",
            "metrics": m(
                conversations=2,
                inbound_conversations=1,
                distinct_contacts=2,
                messages=8,
                inbound_messages=2,
                outbound_messages=6,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=540.0,
                avg_rating=2.0,
                rated=1,
            ),
        },
    ],
    "bySource": [
        {
            "source": "FLOW",
            "metrics": m(
                conversations=2,
                inbound_conversations=0,
                distinct_contacts=2,
                messages=6,
                inbound_messages=2,
                outbound_messages=4,
                closed=2,
                avg_duration=46800.0,
                avg_first_response=900.0,
                avg_rating=2.0,
                rated=1,
            ),
        },
        {
            "source": "INBOUND",
            "metrics": m(
                conversations=4,
                inbound_conversations=4,
                distinct_contacts=4,
                messages=14,
                inbound_messages=7,
                outbound_messages=7,
                closed=3,
                avg_duration=3800.0,
                avg_first_response=600.0,
                avg_rating=4.5,
                rated=2,
            ),
        },
        {
            "source": "INBOX",
            "metrics": m(
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
        },
    ],
}

UTC_SUMMARY: dict[str, Any] = {
    # K8 (03-26 23:30 UTC) leaves the range, K7 (04-02 22:30 UTC) enters it.
    "totals": m(
        conversations=7,
        inbound_conversations=4,
        distinct_contacts=5,
        messages=22,
        inbound_messages=9,
        outbound_messages=13,
        closed=4,
        avg_duration=25350.0,
        avg_first_response=900.0,
        avg_rating=3.5,
        rated=2,
    ),
    "daily": daily(
        {
            "2026-03-27": m(
                conversations=2,
                inbound_conversations=2,
                distinct_contacts=2,
                messages=8,
                inbound_messages=4,
                outbound_messages=4,
                closed=2,
                avg_duration=3900.0,
                avg_first_response=960.0,
                avg_rating=5.0,
                rated=1,
            ),
            "2026-03-29": m(
                conversations=2,
                inbound_conversations=0,
                distinct_contacts=2,
                messages=5,
                inbound_messages=2,
                outbound_messages=3,
                closed=1,
                avg_duration=90000.0,
                avg_first_response=1800.0,
                avg_rating=None,
                rated=0,
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
    "weekly": [
        {
            "start": "2026-03-27",
            "metrics": m(
                conversations=4,
                inbound_conversations=2,
                distinct_contacts=4,
                messages=13,
                inbound_messages=6,
                outbound_messages=7,
                closed=3,
                avg_duration=32600.0,
                avg_first_response=1240.0,
                avg_rating=5.0,
                rated=1,
            ),
        },
        {
            "start": "2026-03-30",
            "metrics": m(
                conversations=3,
                inbound_conversations=2,
                distinct_contacts=3,
                messages=9,
                inbound_messages=3,
                outbound_messages=6,
                closed=1,
                avg_duration=3600.0,
                avg_first_response=560.0,
                avg_rating=2.0,
                rated=1,
            ),
        },
    ],
    "bySource": [
        {
            "source": "FLOW",
            "metrics": m(
                conversations=2,
                inbound_conversations=0,
                distinct_contacts=2,
                messages=6,
                inbound_messages=2,
                outbound_messages=4,
                closed=2,
                avg_duration=46800.0,
                avg_first_response=900.0,
                avg_rating=2.0,
                rated=1,
            ),
        },
        {
            "source": "INBOUND",
            "metrics": m(
                conversations=4,
                inbound_conversations=4,
                distinct_contacts=4,
                messages=13,
                inbound_messages=6,
                outbound_messages=7,
                closed=2,
                avg_duration=3900.0,
                avg_first_response=675.0,
                avg_rating=5.0,
                rated=1,
            ),
        },
        {
            "source": "INBOX",
            "metrics": m(
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
        },
    ],
}


async def test_summary_in_the_account_zone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, SUMMARY, {"filter": RANGE})
    assert body == {"data": {"summaryReport": PARIS_SUMMARY}}


async def test_summary_in_an_explicit_zone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, SUMMARY, {"filter": {**RANGE, "timezone": "UTC"}})
    assert body == {"data": {"summaryReport": UTC_SUMMARY}}


async def test_summary_explicit_zone_equal_to_the_account_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(
        client, data.account, SUMMARY, {"filter": {**RANGE, "timezone": "Europe/Paris"}}
    )
    assert body == {"data": {"summaryReport": PARIS_SUMMARY}}


async def test_other_account_sees_only_its_own_rows(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.other, SUMMARY, {"filter": RANGE})
    report = body["data"]["summaryReport"]
    assert report["totals"] == m(
        conversations=1,
        inbound_conversations=1,
        distinct_contacts=1,
        messages=2,
        inbound_messages=1,
        outbound_messages=1,
        closed=1,
        avg_duration=3600.0,
        avg_first_response=60.0,
        avg_rating=1.0,
        rated=1,
    )
    assert [day["metrics"]["conversations"] for day in report["daily"]] == [0, 1, 0, 0, 0, 0, 0]


async def test_weekly_buckets_clip_to_the_range(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    query = "query ($f: ReportFilter!) { summaryReport(filter: $f) { weekly { start } } }"
    # Wednesday 03-25 .. Wednesday 04-08: three ISO weeks, the first and last clipped.
    body = await graphql(
        client, data.account, query, {"f": {"from": "2026-03-25", "to": "2026-04-08"}}
    )
    assert body["data"]["summaryReport"]["weekly"] == [
        {"start": "2026-03-25"},
        {"start": "2026-03-30"},
        {"start": "2026-04-06"},
    ]
    # One day.
    body = await graphql(
        client, data.account, query, {"f": {"from": "2026-03-29", "to": "2026-03-29"}}
    )
    assert body["data"]["summaryReport"]["weekly"] == [{"start": "2026-03-29"}]


async def test_empty_range_is_zero_filled(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    body = await graphql(
        client, data.account, SUMMARY, {"filter": {"from": "2025-01-01", "to": "2025-01-02"}}
    )
    assert body["data"]["summaryReport"] == {
        "totals": ZERO,
        "daily": [
            {"start": "2025-01-01", "metrics": ZERO},
            {"start": "2025-01-02", "metrics": ZERO},
        ],
        "weekly": [{"start": "2025-01-01", "metrics": ZERO}],
        "bySource": [
            {"source": "FLOW", "metrics": ZERO},
            {"source": "INBOUND", "metrics": ZERO},
            {"source": "INBOX", "metrics": ZERO},
        ],
    }


PER_CONVERSATION = """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals { avgMessagesPerConversation }
    daily { start metrics { avgMessagesPerConversation } }
    weekly { start metrics { avgMessagesPerConversation } }
    bySource { source metrics { avgMessagesPerConversation } }
  }
  agentReport(filter: $filter) { rows { agent { email } metrics { avgMessagesPerConversation } } }
  tagReport(filter: $filter) { rows { tag { name } metrics { avgMessagesPerConversation } } }
}
"""


def _per_conversation(data: dict[str, Any]) -> dict[str, Any]:
    summary = data["summaryReport"]

    def value(metrics: dict[str, Any]) -> float | None:
        return metrics["avgMessagesPerConversation"]  # type: ignore[no-any-return]

    return {
        "totals": value(summary["totals"]),
        "daily": {day["start"]: value(day["metrics"]) for day in summary["daily"]},
        "weekly": {week["start"]: value(week["metrics"]) for week in summary["weekly"]},
        "bySource": {row["source"]: value(row["metrics"]) for row in summary["bySource"]},
        "agents": {
            row["agent"]["email"].split("@")[0]: value(row["metrics"])
            for row in data["agentReport"]["rows"]
        },
        "tags": {row["tag"]["name"]: value(row["metrics"]) for row in data["tagReport"]["rows"]},
    }


async def test_messages_per_conversation(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """avgMessagesPerConversation (the registry's example metric): all the messages of each
    conversation started in the bucket, whenever sent. Messages per conversation: K0 4, K8 3,
    K1 4, K2 2, K3 2, K4 3, K5 4, K6 3, K7 2. Paris reads the aggregates, UTC the raw rows."""
    data = await build_dataset(engine)
    paris = await graphql(client, data.account, PER_CONVERSATION, {"filter": RANGE})
    assert _per_conversation(paris["data"]) == {
        "totals": 3.0,  # K8 K1 K2 K3 K4 K5 K6: 21 / 7
        "daily": {
            "2026-03-27": 3.0,  # K8 K1 K2: 9 / 3
            "2026-03-28": None,
            "2026-03-29": 2.5,  # K3 K4
            "2026-03-30": 4.0,  # K5
            "2026-03-31": 3.0,  # K6
            "2026-04-01": None,
            "2026-04-02": None,
        },
        "weekly": {"2026-03-27": 2.8, "2026-03-30": 3.5},  # 14 / 5; K5 K6: 7 / 2
        "bySource": {"FLOW": 3.0, "INBOUND": 3.0, "INBOX": 3.0},  # K3 K5; K8 K1 K2 K6; K4
        # alice K1 K5; bob K2 K4 K6 (8 / 3); carol K8 (dave, with none, has no row).
        "agents": {"alice": 4.0, "bob": 8 / 3, "carol": 3.0},
        # Sales K8 K1 K5 (11 / 3); Billing K1 K4; Support K2.
        "tags": {"Sales": 11 / 3, "Billing": 3.5, "Support": 2.0},
    }
    utc = await graphql(
        client, data.account, PER_CONVERSATION, {"filter": {**RANGE, "timezone": "UTC"}}
    )
    assert _per_conversation(utc["data"]) == {
        "totals": 20 / 7,  # K1 K2 K3 K4 K5 K6 K7 (K8 leaves, K7 enters)
        "daily": {
            "2026-03-27": 3.0,  # K1 K2
            "2026-03-28": None,
            "2026-03-29": 2.5,
            "2026-03-30": 4.0,
            "2026-03-31": 3.0,
            "2026-04-01": None,
            "2026-04-02": 2.0,  # K7
        },
        "weekly": {"2026-03-27": 2.75, "2026-03-30": 3.0},  # K1 K2 K3 K4: 11 / 4; K5 K6 K7
        "bySource": {"FLOW": 3.0, "INBOUND": 2.75, "INBOX": 3.0},  # INBOUND: K1 K2 K6 K7
        "agents": {"alice": 10 / 3, "bob": 8 / 3},  # alice K1 K5 K7
        "tags": {"Sales": 4.0, "Billing": 3.5, "Support": 2.0},  # Support: K2 K7
    }


PERCENTILES = """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals { ...P }
    daily { start metrics { ...P } }
    weekly { start metrics { ...P } }
    bySource { source metrics { ...P } }
  }
  agentReport(filter: $filter) { rows { agent { email } metrics { ...P } } }
}
fragment P on Metrics {
  medianFirstResponseSeconds p90FirstResponseSeconds medianDurationSeconds p90DurationSeconds
}
"""


def _quartet(metrics: dict[str, Any]) -> tuple[Any, ...]:
    return (
        metrics["medianFirstResponseSeconds"],
        metrics["p90FirstResponseSeconds"],
        metrics["medianDurationSeconds"],
        metrics["p90DurationSeconds"],
    )


async def test_percentiles_of_first_responses_and_durations(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Continuous percentiles (percentile_cont), over the conversations the averages cover.
    First responses (s): K8 300, K1 120, K2 1800, K4 1800 (a tie), K5 900, K6 180 (K3 none).
    Durations (s) of the closed ones: K8 3600, K1 3600, K2 4200, K3 90000, K5 3600."""
    data = await build_dataset(engine)
    body = await graphql(client, data.account, PERCENTILES, {"filter": RANGE})
    summary = body["data"]["summaryReport"]
    # 120 180 300 | 900 1800 1800: the median is between 300 and 900; p90 at rank 4.5 of 0..5,
    # between two 1800s. Durations 3600 3600 3600 4200 90000: p90 at rank 3.6, 4200 + 0.6 *
    # (90000 - 4200).
    assert _quartet(summary["totals"]) == (600.0, 1800.0, 3600.0, 55680.0)
    if engine.dialect.name == "postgresql":  # the definition itself, on the same conversations
        days = calendar(date(2026, 3, 27), date(2026, 4, 2), "Europe/Paris")
        response, duration = "first_response_at - first_inbound_at", "closed_at - started_at"
        within = [
            f"percentile_cont({p}) WITHIN GROUP (ORDER BY {value})"
            for value in (response, duration)
            for p in (0.5, 0.9)
        ]
        async with engine.connect() as connection:
            defined = await connection.execute(
                text(
                    f"SELECT {', '.join(within)} FROM conversation WHERE account_id = :account"
                    " AND started_at >= :start AND started_at < :end"
                ),
                {"account": data.account.id, "start": days.start, "end": days.end},
            )
        # Equal but for the last binary digit: PostgreSQL computes the rank 0.9 * 4 in floating
        # point (3.6000000000000001), we keep it as integers (36 / 10).
        assert tuple(defined.one()) == pytest.approx(_quartet(summary["totals"]), rel=1e-15)
    days = {day["start"]: _quartet(day["metrics"]) for day in summary["daily"]}
    assert days == {
        # K8 300, K1 120, K2 1800: an odd count, the median is the middle one; p90 at rank 1.8.
        # Durations K8 3600, K1 3600, K2 4200: p90 at rank 1.8, 3600 + 0.8 * 600.
        "2026-03-27": (300.0, 1500.0, 3600.0, 4080.0),
        "2026-03-28": (None, None, None, None),
        # K4 1800 alone (K3 unanswered); K3's 90000 alone (K4 open): one value is every percentile.
        "2026-03-29": (1800.0, 1800.0, 90000.0, 90000.0),
        "2026-03-30": (900.0, 900.0, 3600.0, 3600.0),
        "2026-03-31": (180.0, 180.0, None, None),  # K6 is open
        "2026-04-01": (None, None, None, None),
        "2026-04-02": (None, None, None, None),
    }
    weeks = {week["start"]: _quartet(week["metrics"]) for week in summary["weekly"]}
    assert weeks == {
        # Friday 27th to Sunday 29th: 120 300 1800 1800, between 300 and 1800; p90 at rank 2.7
        # between two 1800s. Durations 3600 3600 4200 90000: p90 4200 + 0.7 * (90000 - 4200).
        "2026-03-27": (1050.0, 1800.0, 3900.0, 4200 + 0.7 * 85800),
        # Monday 30th to Thursday 2nd: 180 900; p90 at rank 0.9: 180 + 0.9 * 720. One duration.
        "2026-03-30": (540.0, 828.0, 3600.0, 3600.0),
    }
    sources = {row["source"]: _quartet(row["metrics"]) for row in summary["bySource"]}
    assert sources == {
        "FLOW": (900.0, 900.0, 46800.0, 81360.0),  # K5 900 (K3 none); durations 3600, 90000
        # 120 180 300 1800: between 180 and 300; p90 at rank 2.7, 300 + 0.7 * 1500.
        "INBOUND": (240.0, 1350.0, 3600.0, 4080.0),
        "INBOX": (1800.0, 1800.0, None, None),  # K4, open
    }
    agents = {
        row["agent"]["email"].split("@")[0]: _quartet(row["metrics"])
        for row in body["data"]["agentReport"]["rows"]
    }
    assert agents == {
        "alice": (510.0, 822.0, 3600.0, 3600.0),  # K1 120, K5 900; p90 at 0.9: 120 + 0.9 * 780
        "bob": (1800.0, 1800.0, 4200.0, 4200.0),  # K2 1800, K4 1800, K6 180: 180 1800 1800
        "carol": (300.0, 300.0, 3600.0, 3600.0),  # K8
    }


DISTRIBUTIONS = """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals { ...D }
    daily { start metrics { ...D } }
    bySource { source metrics { ...D } }
  }
  agentReport(filter: $filter) { rows { agent { email } metrics { ...D } } }
}
fragment D on Metrics {
  csatPercent
  firstResponseDistribution { upToSeconds conversations }
  durationDistribution { upToSeconds conversations }
  ratingDistribution { rating conversations }
}
"""
BOUNDS = [60, 300, 900, 1800, 3600, 14400, 28800, 86400, 259200, None]


def _counts(metrics: dict[str, Any]) -> tuple[Any, ...]:
    """(csatPercent, first responses, durations, ratings), the lists as their counts once
    their keys are checked: always every bucket, in order."""
    lists = []
    for name, key, keys in (
        ("firstResponseDistribution", "upToSeconds", BOUNDS),
        ("durationDistribution", "upToSeconds", BOUNDS),
        ("ratingDistribution", "rating", [1, 2, 3, 4, 5]),
    ):
        assert [item[key] for item in metrics[name]] == keys
        lists.append([item["conversations"] for item in metrics[name]])
    return (metrics["csatPercent"], *lists)


NONE_IN_ANY = (None, [0] * 10, [0] * 10, [0] * 5)


async def test_distributions_ratings_and_csat(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Time buckets (a value lands in the first whose bound is >= it), latest ratings and the
    share rated 4 or 5. First responses (s): K8 300, K1 120, K2 1800, K4 1800, K5 900, K6 180,
    K7 600 (K3 none); durations of the closed: K8 3600, K1 3600, K2 4200, K3 90000, K5 3600;
    ratings: K8 4, K1 5 (after 3), K5 2. Paris reads the aggregates, UTC the raw rows."""
    data = await build_dataset(engine)
    body = await graphql(client, data.account, DISTRIBUTIONS, {"filter": RANGE})
    summary = body["data"]["summaryReport"]
    # K8 K1 K2 K3 K4 K5 K6. 300, 1800, 900 and 3600 sit on bounds: in the bucket they close.
    assert _counts(summary["totals"]) == (
        200 / 3,  # 4, 5 and 2: two of three
        [0, 3, 1, 2, 0, 0, 0, 0, 0, 0],  # 120 180 300 | 900 | 1800 1800
        [0, 0, 0, 0, 3, 1, 0, 0, 1, 0],  # 3600 x3 | 4200 | 90000
        [0, 1, 0, 1, 1],
    )
    assert {day["start"]: _counts(day["metrics"]) for day in summary["daily"]} == {
        "2026-03-27": (  # K8 K1 K2
            100.0,
            [0, 2, 0, 1, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 2, 1, 0, 0, 0, 0],
            [0, 0, 0, 1, 1],
        ),
        "2026-03-28": NONE_IN_ANY,
        # K3 (unanswered, closed after 90000 s), K4 (answered after 1800 s, open).
        "2026-03-29": (None, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [0] * 8 + [1, 0], [0] * 5),
        "2026-03-30": (  # K5: rated 2, a dissatisfied 0 %
            0.0,
            [0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0],
        ),
        "2026-03-31": (None, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0] * 10, [0] * 5),  # K6, open
        "2026-04-01": NONE_IN_ANY,
        "2026-04-02": NONE_IN_ANY,
    }
    assert {row["source"]: _counts(row["metrics"]) for row in summary["bySource"]} == {
        "FLOW": (  # K3 K5
            0.0,
            [0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0, 0, 1, 0],
            [0, 1, 0, 0, 0],
        ),
        "INBOUND": (  # K8 K1 K2 K6
            100.0,
            [0, 3, 0, 1, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 2, 1, 0, 0, 0, 0],
            [0, 0, 0, 1, 1],
        ),
        "INBOX": (None, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [0] * 10, [0] * 5),  # K4
    }
    agents = {
        row["agent"]["email"].split("@")[0]: _counts(row["metrics"])
        for row in body["data"]["agentReport"]["rows"]
    }
    assert agents == {
        "alice": (  # K1 K5
            50.0,
            [0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 2, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 1],
        ),
        "bob": (None, [0, 1, 0, 2, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 0, 0, 0, 0], [0] * 5),
        "carol": (  # K8
            100.0,
            [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 0],
        ),
    }
    utc = await graphql(
        client, data.account, DISTRIBUTIONS, {"filter": {**RANGE, "timezone": "UTC"}}
    )
    # K1 K2 K3 K4 K5 K6 K7: K8 leaves (with its 300 s, 3600 s and 4), K7 enters (600 s, open).
    assert _counts(utc["data"]["summaryReport"]["totals"]) == (
        50.0,
        [0, 2, 2, 2, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 2, 1, 0, 0, 1, 0],
        [0, 1, 0, 0, 1],
    )


FUNNEL = """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals { ...F }
    daily { start metrics { ...F } }
    failureReasons { code title messages }
  }
  agentReport(filter: $filter) { rows { agent { email } metrics { ...F } } }
}
fragment F on Metrics { outboundMessages deliveredMessages readMessages failedMessages }
"""


def _funnel(metrics: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        metrics["outboundMessages"],
        metrics["deliveredMessages"],
        metrics["readMessages"],
        metrics["failedMessages"],
    )


async def test_the_delivery_funnel_and_failure_reasons(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The outbound messages sent in the bucket by the status each holds: delivered counts
    delivered, read and played; read counts read and played. Paris (the aggregates): K0's alice
    06:10 (07:10), K8's carol (00:35) and K1's two on 03-27; K2's bob, only sent, on 03-28; K3's
    failed bot and K4's bob 21:30 on 03-29; K4's played bob (00:15) and K5's three (one failed)
    on 03-30; K6's alice and bob (no status) on 03-31."""
    data = await build_dataset(engine)
    body = await graphql(client, data.account, FUNNEL, {"filter": RANGE})
    summary = body["data"]["summaryReport"]
    assert _funnel(summary["totals"]) == (13, 9, 2, 2)
    assert {day["start"]: _funnel(day["metrics"]) for day in summary["daily"]} == {
        "2026-03-27": (4, 4, 1, 0),
        "2026-03-28": (1, 0, 0, 0),
        "2026-03-29": (2, 1, 0, 1),
        "2026-03-30": (4, 3, 1, 1),
        "2026-03-31": (2, 1, 0, 0),
        "2026-04-01": (0, 0, 0, 0),
        "2026-04-02": (0, 0, 0, 0),
    }
    # One each: by code then.
    assert summary["failureReasons"] == [
        {"code": UNDELIVERABLE[0], "title": UNDELIVERABLE[1], "messages": 1},
        {"code": ENGAGEMENT[0], "title": ENGAGEMENT[1], "messages": 1},
    ]
    agents = {
        row["agent"]["email"].split("@")[0]: _funnel(row["metrics"])
        for row in body["data"]["agentReport"]["rows"]
    }
    # The messages of their conversations, whoever sent them: alice K0 (started before the
    # range), K1, K5; bob K2, K4, K6; carol K8.
    assert agents == {"alice": (6, 5, 1, 1), "bob": (5, 3, 1, 0), "carol": (1, 1, 0, 0)}
    utc = {**RANGE, "timezone": "UTC"}  # the raw rows: K8's reply leaves, K7's enters
    body = await graphql(client, data.account, FUNNEL, {"filter": utc})
    assert _funnel(body["data"]["summaryReport"]["totals"]) == (13, 9, 2, 2)
    daily = body["data"]["summaryReport"]["daily"]
    assert [_funnel(day["metrics"]) for day in daily] == [
        (4, 3, 1, 0),  # K0 06:10, K1 08:02 and 08:20 (read), K2 23:20 (sent)
        (0, 0, 0, 0),
        (3, 2, 1, 1),  # K3 failed; K4 21:30 and 22:15 (played)
        (3, 2, 0, 1),  # K5
        (2, 1, 0, 0),  # K6
        (0, 0, 0, 0),
        (1, 1, 0, 0),  # K7
    ]
    # The filter selects the failures too: K5 is alice's, K3 nobody's; none is INBOUND.
    alice = {**RANGE, "agentEmails": ["alice@acme.test"]}
    body = await graphql(client, data.account, FUNNEL, {"filter": alice})
    assert body["data"]["summaryReport"]["failureReasons"] == [
        {"code": ENGAGEMENT[0], "title": ENGAGEMENT[1], "messages": 1}
    ]
    inbound_only = {**RANGE, "sources": ["INBOUND"]}
    body = await graphql(client, data.account, FUNNEL, {"filter": inbound_only})
    assert body["data"]["summaryReport"]["failureReasons"] == []


async def test_distinct_contacts_alone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Selected alone, distinct contacts are the figures worked out for the summary above
    (they come from the cells' contact sets, without the conversation counts beside them)."""
    data = await build_dataset(engine)
    query = """query ($filter: ReportFilter!) { summaryReport(filter: $filter) {
        totals { distinctContacts } daily { start metrics { distinctContacts } } } }"""
    body = await graphql(client, data.account, query, {"filter": RANGE})
    assert body == {
        "data": {
            "summaryReport": {
                "totals": {"distinctContacts": PARIS_SUMMARY["totals"]["distinctContacts"]},
                "daily": [
                    {
                        "start": day["start"],
                        "metrics": {"distinctContacts": day["metrics"]["distinctContacts"]},
                    }
                    for day in PARIS_SUMMARY["daily"]
                ],
            }
        }
    }
