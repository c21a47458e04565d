"""Drill-down filters (issue 17): the conversations behind a figure, listed by
`conversationDetails` and counted by the reports with the same filter, over the hand-built
dataset (Paris). For each filter, the conversations worked out by hand, and the figure of the
unfiltered report it drills into, which must equal the count of the listed ones."""

from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.export import filter_of_payload, filter_payload
from resolvers.filters import SecondsRange, parse_filter
from tests.conftest import create_test_account, graphql
from tests.factories import at, building, inbound, reply
from tests.reports.dataset import RANGE, Dataset, build_dataset

REPORT = """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    totals {
      conversations closedConversations ratedConversations
      firstResponseDistribution { upToSeconds conversations }
      durationDistribution { upToSeconds conversations }
      ratingDistribution { rating conversations }
    }
    heatmap { weekday hour metrics { conversations } }
  }
  widgetReport(filter: $filter) { byButton { key conversations } }
  conversationDetails(filter: $filter, first: 50) { totalCount edges { node { id } } }
}
"""


def bucket(report: dict[str, Any], distribution: str, up_to: int | None) -> int:
    rows = report["summaryReport"]["totals"][distribution]
    return next(row["conversations"] for row in rows if row["upToSeconds"] == up_to)


def rating(report: dict[str, Any], value: int) -> int:
    rows = report["summaryReport"]["totals"]["ratingDistribution"]
    return next(row["conversations"] for row in rows if row["rating"] == value)


def heatmap(report: dict[str, Any], weekdays: set[int], hours: set[int]) -> int:
    return sum(
        cell["metrics"]["conversations"]
        for cell in report["summaryReport"]["heatmap"]
        if cell["weekday"] in weekdays and cell["hour"] in hours
    )


def answered(report: dict[str, Any]) -> int:
    rows = report["summaryReport"]["totals"]["firstResponseDistribution"]
    return sum(row["conversations"] for row in rows)


def button(report: dict[str, Any], name: str) -> int:
    rows = report["widgetReport"]["byButton"]
    return next(row["conversations"] for row in rows if row["key"] == name)


ALL_DAYS, ALL_HOURS = set(range(1, 8)), set(range(24))
# (the drill-down filter, the conversations it lists, newest first, the figure it drills into)
CASES: list[tuple[dict[str, Any], list[str], Any]] = [
    # Local start (Paris): K8 Fri 00:30, K1 Fri 09:00, K2 Fri 23:50, K3 Sun 01:30, K4 Sun 23:30,
    # K5 Mon 09:00, K6 Tue 14:00.
    ({"weekdays": [5]}, ["K2", "K1", "K8"], lambda r: heatmap(r, {5}, ALL_HOURS)),
    ({"weekdays": [5], "hours": [9]}, ["K1"], lambda r: heatmap(r, {5}, {9})),
    ({"hours": [23, 9]}, ["K5", "K4", "K2", "K1"], lambda r: heatmap(r, ALL_DAYS, {9, 23})),
    ({"weekdays": [7, 1], "hours": [1]}, ["K3"], lambda r: heatmap(r, {7, 1}, {1})),
    ({"weekdays": [3]}, [], lambda r: heatmap(r, {3}, ALL_HOURS)),
    # First responses: K8 300, K1 120, K2 1800, K4 1800, K5 900, K6 180 seconds. A bucket
    # "up to b" after "up to a" holds a < value <= b: {min: a + 1, max: b + 1}.
    (
        {"firstResponseSeconds": {"min": 61, "max": 301}},
        ["K6", "K1", "K8"],
        lambda r: bucket(r, "firstResponseDistribution", 300),
    ),
    (
        {"firstResponseSeconds": {"min": 901, "max": 1801}},
        ["K4", "K2"],
        lambda r: bucket(r, "firstResponseDistribution", 1800),
    ),
    ({"firstResponseSeconds": {"min": 1801}}, [], lambda r: 0),
    ({"firstResponseSeconds": {}}, ["K6", "K5", "K4", "K2", "K1", "K8"], answered),
    # Durations (closed ones): K8 3600, K1 3600, K2 4200, K3 90000, K5 3600.
    (
        {"durationSeconds": {"min": 1801, "max": 3601}},
        ["K5", "K1", "K8"],
        lambda r: bucket(r, "durationDistribution", 3600),
    ),
    (
        {"durationSeconds": {"min": 86401, "max": 259201}},
        ["K3"],
        lambda r: bucket(r, "durationDistribution", 259200),
    ),
    ({"durationSeconds": {"max": 3600}}, [], lambda r: 0),
    # Latest ratings: K8 4, K1 5 (3 then 5), K5 2.
    ({"ratings": [4, 5]}, ["K1", "K8"], lambda r: rating(r, 4) + rating(r, 5)),
    ({"ratings": [2]}, ["K5"], lambda r: rating(r, 2)),
    ({"ratings": [1, 3]}, [], lambda r: rating(r, 1) + rating(r, 3)),
    (
        {"statuses": ["CLOSED"]},
        ["K5", "K3", "K2", "K1", "K8"],
        lambda r: r["summaryReport"]["totals"]["closedConversations"],
    ),
    ({"statuses": ["PENDING", "OPEN"]}, ["K6", "K4"], lambda r: 7 - 5),
    ({"answered": True}, ["K6", "K5", "K4", "K2", "K1", "K8"], answered),
    (
        {"answered": False},
        ["K3"],
        lambda r: r["summaryReport"]["totals"]["conversations"] - answered(r),
    ),
    # Clicks: Pricing W3 -> K8 (03-27 00:10 local), W4 -> K6; Homepage W1 -> K1 (W5 -> K7 is
    # out of range in Paris).
    ({"buttons": ["Pricing"]}, ["K6", "K8"], lambda r: button(r, "Pricing")),
    ({"buttons": ["Homepage"]}, ["K1"], lambda r: button(r, "Homepage")),
    ({"buttons": ["Homepage", "Pricing"]}, ["K6", "K1", "K8"], lambda r: 3),
    # Combined, with the other lists.
    (
        {"answered": True, "agentEmails": ["bob@acme.test"], "hours": [23]},
        ["K4", "K2"],
        lambda r: 2,
    ),
]


async def button_ids(client: httpx.AsyncClient, data: Dataset) -> dict[str, str]:
    """The account's buttons by name, as the `buttons` root field lists them."""
    body = await graphql(client, data.account, "{ buttons { id name key } }")
    buttons = body["data"]["buttons"]
    assert [button["name"] for button in buttons] == ["Homepage", "Pricing"]
    assert len({button["key"] for button in buttons}) == 2
    return {button["name"]: button["id"] for button in buttons}


@pytest.fixture
async def dataset(engine: AsyncEngine) -> Dataset:
    return await build_dataset(engine)


async def test_every_drill_down_lists_the_conversations_behind_its_figure(
    client: httpx.AsyncClient, dataset: Dataset
) -> None:
    unfiltered = (await graphql(client, dataset.account, REPORT, {"filter": RANGE}))["data"]
    buttons = await button_ids(client, dataset)
    for drill, names, figure in CASES:
        flt = {**RANGE, **drill}
        if "buttons" in drill:
            flt["buttons"] = [buttons[name] for name in drill["buttons"]]
        body = await graphql(client, dataset.account, REPORT, {"filter": flt})
        assert "errors" not in body, (drill, body)
        details = body["data"]["conversationDetails"]
        listed = [edge["node"]["id"] for edge in details["edges"]]
        assert listed == [str(dataset.ids[name]) for name in names], drill
        assert details["totalCount"] == len(names) == figure(unfiltered), drill
        # The reports read the same conversations (by weekdays and hours of the start: from
        # the hourly cells; by the others, from the raw rows).
        assert body["data"]["summaryReport"]["totals"]["conversations"] == len(names), drill


async def test_a_drill_down_reaches_the_agent_and_tag_reports_and_the_export(
    client: httpx.AsyncClient, dataset: Dataset
) -> None:
    query = """query ($filter: ReportFilter!) {
      agentReport(filter: $filter) { rows { agent { email } metrics { conversations } } }
      tagReport(filter: $filter) { rows { tag { name } metrics { conversations } } } }"""
    flt = {**RANGE, "statuses": ["CLOSED"], "ratings": [2, 4, 5]}
    body = (await graphql(client, dataset.account, query, {"filter": flt}))["data"]
    # K8 (carol, Sales, 4), K1 (alice, Sales + Billing, 5), K5 (alice, Sales, 2).
    assert [
        (row["agent"]["email"], row["metrics"]["conversations"])
        for row in body["agentReport"]["rows"]
    ] == [("alice@acme.test", 2), ("carol@acme.test", 1)]
    assert [
        (row["tag"]["name"], row["metrics"]["conversations"]) for row in body["tagReport"]["rows"]
    ] == [("Sales", 3), ("Billing", 1)]
    mutation = """mutation ($filter: ReportFilter!) {
      exportReportCsv(report: DETAILS, filter: $filter) { url } }"""
    drill = {**RANGE, "weekdays": [5], "answered": True}
    body = await graphql(client, dataset.account, mutation, {"filter": drill})
    response = await client.get(body["data"]["exportReportCsv"]["url"])
    assert response.status_code == 200
    lines = response.text.strip().splitlines()
    # K2, K1, K8: Friday starts, all answered.
    assert [line.split(",")[0] for line in lines[1:]] == [
        "2026-03-27T23:50:00+01:00",
        "2026-03-27T09:00:00+01:00",
        "2026-03-27T00:30:00+01:00",
    ]


@pytest.mark.parametrize("statuses", [["CLOSED"], ["CLOSED", "OPEN"]])
async def test_a_drill_down_into_ratings_counts_the_rated_conversations_only(
    client: httpx.AsyncClient, dataset: Dataset, engine: AsyncEngine, statuses: list[str]
) -> None:
    """The details' count of a drill-down into ratings and statuses (which the aggregates do
    not answer) reads the rated index, not every conversation in range (on SQLite, whose
    planner has no statistics here; the page itself may walk the range by start, newest first,
    to stop at its 50th row)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plans")
    query = """query ($filter: ReportFilter!) {
      conversationDetails(filter: $filter, first: 1) { totalCount edges { node { id } } } }"""
    seen: dict[str, Any] = {}

    def capture(*args: Any) -> None:
        _connection, _cursor, statement, parameters, _context, _many = args
        if "count(*)" in statement and "conversation.rating IN" in statement:
            seen.setdefault(statement, parameters)

    flt = {**RANGE, "ratings": [4, 5], "statuses": statuses}
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        body = await graphql(client, dataset.account, query, {"filter": flt})
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    details = body["data"]["conversationDetails"]
    assert (details["totalCount"], len(details["edges"])) == (2, 1)  # K1 and K8, both closed
    assert len(seen) == 1, list(seen)
    ((statement, parameters),) = seen.items()
    async with engine.connect() as connection:
        plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        details = [row[-1] for row in plan]
    assert details == [
        "SEARCH conversation USING COVERING INDEX ix_conversation_rated"
        " (account_id=? AND rating=? AND started_at>? AND started_at<?)"
    ], details


@pytest.mark.parametrize(
    ("drill", "field", "message"),
    [
        ({"weekdays": [0]}, "filter.weekdays", "1 (Monday) to 7 (Sunday)"),
        ({"weekdays": [8]}, "filter.weekdays", "1 (Monday) to 7 (Sunday)"),
        ({"hours": [24]}, "filter.hours", "0 to 23"),
        ({"hours": [-1]}, "filter.hours", "0 to 23"),
        ({"ratings": [0, 6]}, "filter.ratings", "1 to 5"),
        ({"firstResponseSeconds": {"min": 300, "max": 300}}, "filter.firstResponseSeconds", "min"),
        ({"durationSeconds": {"min": -1}}, "filter.durationSeconds", "negative"),
        ({"buttons": ["abc"]}, "filter.buttons", "button id"),
        ({"hours": list(range(24)) * 5}, "filter.hours", "at most 100"),
    ],
)
async def test_bad_drill_downs_are_refused(
    client: httpx.AsyncClient, dataset: Dataset, drill: dict[str, Any], field: str, message: str
) -> None:
    query = (
        "query ($filter: ReportFilter!) { summaryReport(filter: $filter) { totals { messages } } }"
    )
    body = await graphql(client, dataset.account, query, {"filter": {**RANGE, **drill}})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["extensions"]["field"] == field, body
    assert message in error["message"], body


async def test_buttons_are_the_accounts_own(client: httpx.AsyncClient, dataset: Dataset) -> None:
    mine = await button_ids(client, dataset)
    body = await graphql(client, dataset.other, "{ buttons { id name } }")
    theirs = body["data"]["buttons"]
    assert [button["name"] for button in theirs] == ["Homepage"]
    assert theirs[0]["id"] not in mine.values()
    # Another account's button selects nothing here.
    query = """query ($filter: ReportFilter!) {
      conversationDetails(filter: $filter) { totalCount } }"""
    flt = {**RANGE, "buttons": [theirs[0]["id"]]}
    body = await graphql(client, dataset.account, query, {"filter": flt})
    assert body["data"]["conversationDetails"]["totalCount"] == 0


async def test_the_local_start_of_a_conversation_older_than_the_range(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A conversation that started in winter (Paris UTC+1) with messages in a summer range
    (UTC+2): its local start hour is that of its own day, not of the range's offset."""
    account = await create_test_account(engine, name="Old", timezone="Europe/Paris")
    async with building(engine, account.id) as make:
        agent = await make.agent("ana@old.test")
        contact = await make.contact("+33600000200")
        start = at("2026-03-02 10:30", "UTC")  # Monday 11:30 in Paris
        await make.conversation(
            contact,
            [inbound(start), reply(start + 60, agent), inbound(at("2026-04-07 10:00", "UTC"))],
            assignee=agent,
        )
    query = """query ($filter: ReportFilter!) {
      summaryReport(filter: $filter) { totals { messages } } }"""
    april = {"from": "2026-04-01", "to": "2026-04-30"}
    for hours, messages in (([11], 1), ([12], 0)):
        flt = {**april, "weekdays": [1], "hours": hours}
        body = await graphql(client, account, query, {"filter": flt})
        assert body["data"]["summaryReport"]["totals"] == {"messages": messages}, hours


def test_links_keep_their_drill_downs_and_older_links_have_none() -> None:
    flt = parse_filter(
        from_=date(2026, 3, 27),
        to=date(2026, 4, 2),
        account_timezone="Europe/Paris",
        max_range_days=366,
        weekdays=[5, 1, 5],
        hours=[9],
        first_response_seconds=(61, None),
        duration_seconds=(None, 3601),
        ratings=[4, 5],
        statuses=["CLOSED"],
        answered=True,
        buttons=["7", "3"],
    )
    assert (flt.weekdays, flt.buttons, flt.first_response_seconds) == (
        (1, 5),
        (3, 7),
        SecondsRange(61, None),
    )
    assert filter_of_payload(filter_payload(flt), 366) == flt
    older = {
        key: value
        for key, value in filter_payload(flt).items()
        if key in ("from", "to", "timezone", "contactTags", "conversationTags", "agentEmails")
        or key == "sources"
    }
    assert not filter_of_payload(older, 366).drills_down


async def test_a_drilled_report_sums_its_parts_message_figures_from_one_reading(
    client: httpx.AsyncClient, dataset: Dataset
) -> None:
    """Closed conversations (a drill-down the aggregates do not answer): their messages sent in
    range, worked out by hand, in every part of the summary and the agents report, which read
    the raw messages once per report (per day and source, or agent) and sum them per part.
    K0 (alice): 2 on 03-27 (1 in); K8 (carol): 3 on 03-27 (2 in); K1 (alice): 4 on 03-27 (2 in);
    K2 (bob): 1 in on 03-27 (23:50), 1 out on 03-28 (00:20); K3 (flow, unassigned): 2 on 03-29
    (1 in); K5 (flow, alice): 4 on 03-30 (1 in)."""
    query = """query ($filter: ReportFilter!) {
      summaryReport(filter: $filter) {
        totals { messages inboundMessages outboundMessages }
        daily { start metrics { messages inboundMessages } }
        weekly { start metrics { messages outboundMessages } }
        bySource { source metrics { messages inboundMessages } }
      }
      agentReport(filter: $filter) {
        rows { agent { email } metrics { messages } daily { start metrics { messages } } }
      }
    }"""
    flt = {**RANGE, "statuses": ["CLOSED"]}
    readings: list[str] = []

    def capture(*args: Any) -> None:
        statement = args[2]
        if "FROM message JOIN conversation" in statement:
            readings.append(statement)

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        body = (await graphql(client, dataset.account, query, {"filter": flt}))["data"]
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    # One reading for the summary's four parts, one for the agents, each of two statements:
    # the messages of the conversations started in range, and of those started before it
    # (K0, whose two messages of the 27th count).
    assert len(readings) == 4, readings
    summary = body["summaryReport"]
    assert summary["totals"] == {"messages": 17, "inboundMessages": 8, "outboundMessages": 9}
    daily = {row["start"]: row["metrics"] for row in summary["daily"] if row["metrics"]["messages"]}
    assert daily == {
        "2026-03-27": {"messages": 10, "inboundMessages": 6},
        "2026-03-28": {"messages": 1, "inboundMessages": 0},
        "2026-03-29": {"messages": 2, "inboundMessages": 1},
        "2026-03-30": {"messages": 4, "inboundMessages": 1},
    }
    assert [(row["start"], row["metrics"]) for row in summary["weekly"]] == [
        ("2026-03-27", {"messages": 13, "outboundMessages": 6}),
        ("2026-03-30", {"messages": 4, "outboundMessages": 3}),
    ]
    assert [(row["source"], row["metrics"]) for row in summary["bySource"]] == [
        ("FLOW", {"messages": 6, "inboundMessages": 2}),
        ("INBOUND", {"messages": 11, "inboundMessages": 6}),
        ("INBOX", {"messages": 0, "inboundMessages": 0}),
    ]
    agents = {
        row["agent"]["email"]: (
            row["metrics"]["messages"],
            {
                d["start"]: d["metrics"]["messages"]
                for d in row["daily"]
                if d["metrics"]["messages"]
            },
        )
        for row in body["agentReport"]["rows"]
    }
    assert agents == {
        "alice@acme.test": (10, {"2026-03-27": 6, "2026-03-30": 4}),
        "bob@acme.test": (2, {"2026-03-27": 1, "2026-03-28": 1}),
        "carol@acme.test": (3, {"2026-03-27": 3}),
    }


async def test_sqlite_finds_a_drilled_reports_messages_from_its_conversations(
    client: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    """A drill-down keeps few conversations: their messages must be found from them, in every
    grouping (the summary by source and hour of the week, the agents, the tags). SQLite would
    otherwise look up the conversation of every message sent in range (1.0 s for 90 days at a
    million conversations, against 0.4), or walk every tag link, or every assigned
    conversation of the account, to skip a sort."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner")
    query = """query ($filter: ReportFilter!) {
      summaryReport(filter: $filter) {
        totals { messages } bySource { metrics { messages } } heatmap { metrics { messages } }
      }
      agentReport(filter: $filter) { rows { metrics { messages } } }
      tagReport(filter: $filter) { rows { metrics { messages } } }
    }"""
    readings: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        if "FROM message JOIN conversation" in args[2]:
            readings.append((args[2], args[3]))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        flt = {**RANGE, "statuses": ["CLOSED"], "weekdays": [1, 5, 7]}
        body = await graphql(client, dataset.account, query, {"filter": flt})
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    assert "errors" not in body, body
    # Two per grouping (the reports run concurrently): the messages of the conversations
    # started in range, then of those started before it, found by their last message.
    before = [statement for statement, _ in readings if "last_message_at >=" in statement]
    assert (len(readings), len(before)) == (8, 4)
    async with engine.connect() as connection:
        for statement, parameters in readings:
            driver = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = [row[3] for row in (await driver).all()]
            found = "ix_conversation_open" if statement in before else "started_at>? AND started_"
            assert plan[0].startswith("SEARCH conversation USING") and found in plan[0], plan
            assert any("SEARCH message USING INDEX ix_message_conversation" in s for s in plan)
