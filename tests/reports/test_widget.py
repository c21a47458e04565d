"""widgetReport over the hand-built dataset's clicks: totals, days and every group, in the
account's zone and in UTC, and the filter applying to attributed conversations only."""

from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from resolvers import widget
from resolvers.filters import parse_filter
from tests.conftest import graphql
from tests.reports.dataset import DAYS, RANGE, build_dataset

WIDGET = """
fragment C on ClickCount { key clicks conversations }
query ($filter: ReportFilter!) {
  widgetReport(filter: $filter) {
    clicks conversations
    daily { start clicks conversations }
    byButton { ...C } byReferrer { ...C } byUtmCampaign { ...C } byUtmMedium { ...C }
    byUtmSource { ...C } byUtmTerm { ...C } byUtmContent { ...C }
  }
}
"""


def days(figures: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {
            "start": day,
            "clicks": figures.get(day, (0, 0))[0],
            "conversations": figures.get(day, (0, 0))[1],
        }
        for day in DAYS
    ]


def groups(*rows: tuple[str | None, int, int]) -> list[dict[str, Any]]:
    return [
        {"key": key, "clicks": clicks, "conversations": conversations}
        for key, clicks, conversations in rows
    ]


# W1 W2 W3 (03-27 00:10 local) W6 W4 in range; W5 (04-03 00:20 local) out.
PARIS_WIDGET = {
    "clicks": 5,
    "conversations": 3,  # K1 (W1), K8 (W3), K6 (W4)
    "daily": days({"2026-03-27": (3, 2), "2026-03-29": (1, 0), "2026-03-31": (1, 1)}),
    "byButton": groups(("Homepage", 3, 1), ("Pricing", 2, 2)),
    "byReferrer": groups(
        ("https://acme.test/", 2, 1),
        ("https://acme.test/pricing", 1, 1),
        ("https://blog.acme.test/post", 1, 0),
        (None, 1, 1),
    ),
    "byUtmCampaign": groups(("spring", 3, 2), ("autumn", 1, 0), (None, 1, 1)),
    # cpc and "none given" tie on two clicks: the null key comes last.
    "byUtmMedium": groups(("cpc", 2, 1), (None, 2, 1), ("email", 1, 1)),
    "byUtmSource": groups(("google", 2, 1), ("blog", 1, 0), ("newsletter", 1, 1), (None, 1, 1)),
    "byUtmTerm": groups((None, 4, 2), ("whatsapp", 1, 1)),
    "byUtmContent": groups((None, 4, 2), ("a", 1, 1)),
}

# W3 (03-26 23:10 UTC) out, W5 (04-02 22:20 UTC, attributed to K7) in.
UTC_WIDGET = {
    "clicks": 5,
    "conversations": 3,  # K1, K6, K7
    "daily": days(
        {"2026-03-27": (2, 1), "2026-03-29": (1, 0), "2026-03-31": (1, 1), "2026-04-02": (1, 1)}
    ),
    "byButton": groups(("Homepage", 4, 2), ("Pricing", 1, 1)),
    "byReferrer": groups(
        ("https://acme.test/", 3, 2), ("https://blog.acme.test/post", 1, 0), (None, 1, 1)
    ),
    "byUtmCampaign": groups(("spring", 3, 2), ("autumn", 1, 0), (None, 1, 1)),
    "byUtmMedium": groups(("cpc", 2, 1), (None, 2, 1), ("email", 1, 1)),
    "byUtmSource": groups(("google", 2, 1), ("blog", 1, 0), ("newsletter", 1, 1), (None, 1, 1)),
    "byUtmTerm": groups((None, 4, 2), ("whatsapp", 1, 1)),
    "byUtmContent": groups((None, 4, 2), ("a", 1, 1)),
}


async def test_widget_in_the_account_zone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, WIDGET, {"filter": RANGE})
    assert body == {"data": {"widgetReport": PARIS_WIDGET}}


async def test_widget_in_an_explicit_zone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, WIDGET, {"filter": {**RANGE, "timezone": "UTC"}})
    assert body == {"data": {"widgetReport": UTC_WIDGET}}


async def test_widget_filter_applies_to_attributed_conversations_only(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    query = """query ($f: ReportFilter!) {
      widgetReport(filter: $f) {
        clicks conversations byButton { key clicks conversations }
        daily { start clicks conversations }
      }
    }"""
    body = await graphql(
        client, data.account, query, {"f": {**RANGE, "agentEmails": ["bob@acme.test"]}}
    )
    # Every click still counts; of K1 (alice), K8 (carol) and K6 (bob) only K6 is bob's.
    assert body["data"]["widgetReport"] == {
        "clicks": 5,
        "conversations": 1,
        "byButton": groups(("Homepage", 3, 0), ("Pricing", 2, 1)),
        "daily": days({"2026-03-27": (3, 0), "2026-03-29": (1, 0), "2026-03-31": (1, 1)}),
    }
    body = await graphql(
        client, data.account, query, {"f": {**RANGE, "conversationTags": ["sales"]}}
    )
    # K1 and K8 carry Sales, K6 does not.
    assert body["data"]["widgetReport"]["conversations"] == 2
    assert body["data"]["widgetReport"]["byButton"] == groups(("Homepage", 3, 1), ("Pricing", 2, 1))


# Filtered to Sales (K1 by W1, K8 by W3), in the account's zone: every group (clicks from the
# click aggregates, the conversations from the attributed clicks).
SALES_WIDGET = {
    "clicks": 5,
    "conversations": 2,
    "daily": days({"2026-03-27": (3, 2), "2026-03-29": (1, 0), "2026-03-31": (1, 0)}),
    "byButton": groups(("Homepage", 3, 1), ("Pricing", 2, 1)),
    "byReferrer": groups(
        ("https://acme.test/", 2, 1),
        ("https://acme.test/pricing", 1, 1),
        ("https://blog.acme.test/post", 1, 0),
        (None, 1, 0),
    ),
    "byUtmCampaign": groups(("spring", 3, 1), ("autumn", 1, 0), (None, 1, 1)),
    "byUtmMedium": groups(("cpc", 2, 1), (None, 2, 1), ("email", 1, 0)),
    "byUtmSource": groups(("google", 2, 1), ("blog", 1, 0), ("newsletter", 1, 0), (None, 1, 1)),
    "byUtmTerm": groups((None, 4, 1), ("whatsapp", 1, 1)),
    "byUtmContent": groups((None, 4, 1), ("a", 1, 1)),
}


# Filters that keep K1 and K8 of the three attributed conversations in range (K6 is bob's, open
# and untagged): a tag or agents are guessed to select few, the status most (2 of 3).
K1_AND_K8 = (
    {"conversationTags": ["sales"]},
    {"statuses": ["CLOSED"]},
    {"agentEmails": ["alice@acme.test", "carol@acme.test"]},
)
SIDES = ["tag", "status", "agents"]


@pytest.mark.parametrize("lists", K1_AND_K8, ids=SIDES)
async def test_widget_filtered_in_every_group(
    client: httpx.AsyncClient, engine: AsyncEngine, lists: dict[str, list[str]]
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, WIDGET, {"filter": {**RANGE, **lists}})
    assert body == {"data": {"widgetReport": SALES_WIDGET}}


@pytest.mark.parametrize("lists", K1_AND_K8, ids=SIDES)
@pytest.mark.parametrize("leaving_out", [False, True], ids=["counting-in", "counting-out"])
async def test_widget_filtered_either_side(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    lists: dict[str, list[str]],
    leaving_out: bool,
) -> None:
    """The attributed conversations that match are counted, or those that do not are counted
    and taken from every attributed one: whichever side the guess picks, the same report."""
    data = await build_dataset(engine)

    async def guess(*_: object) -> bool:
        return leaving_out

    monkeypatch.setattr(widget, "_mostly_matching", guess)
    body = await graphql(client, data.account, WIDGET, {"filter": {**RANGE, **lists}})
    assert body == {"data": {"widgetReport": SALES_WIDGET}}


@pytest.mark.parametrize(
    ("lists", "mostly"),
    [({"statuses": ["CLOSED"]}, True), ({"statuses": ["OPEN"]}, False), (K1_AND_K8[0], False)],
)
async def test_widget_guess_of_the_side(
    engine: AsyncEngine, lists: dict[str, list[str]], mostly: bool
) -> None:
    """The sample of attributed clicks in range (K1, K8 closed; K6 open); a tag list is taken to
    select few without reading it."""
    data = await build_dataset(engine)
    flt = parse_filter(
        from_=date.fromisoformat(RANGE["from"]),
        to=date.fromisoformat(RANGE["to"]),
        timezone=None,
        account_timezone="Europe/Paris",
        max_range_days=366,
        use_aggregates=True,
        conversation_tags=lists.get("conversationTags"),
        statuses=lists.get("statuses"),
    )
    async with session_factory(engine)() as session:
        assert await widget._mostly_matching(session, data.account.id, flt) is mostly


async def test_widget_of_another_account(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    query = """query ($f: ReportFilter!) {
      widgetReport(filter: $f) { clicks conversations byButton { key clicks conversations } }
    }"""
    body = await graphql(client, data.other, query, {"f": RANGE})
    assert body["data"]["widgetReport"] == {
        "clicks": 1,
        "conversations": 1,
        "byButton": groups(("Homepage", 1, 1)),
    }
