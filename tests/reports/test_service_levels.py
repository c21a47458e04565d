"""Office hours and service levels through ingestion and the reports (issue 18), worked out by
hand: a response over a weekend and the Paris spring change, a conversation started before the
office opens and answered before it does, a response over a holiday; met, breached and breached
while still open; the deadline passing while a conversation waits (the auto-close job); the
schedule and the targets changed afterwards (every figure recomputed). Both engines, through
HTTP; the aggregates and the raw rows answer the same."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api import accounts
from ingest.aggregates import rebuild_aggregates
from ingest.autoclose import close_due
from models.db import now, transaction
from models.errors import BadInput
from models.office_hours import parse_office_hours
from tests.conftest import TestAccount, create_test_account, graphql
from tests.ingest.support import add_channel, inbound, post_events, post_webhook
from tests.ingest.test_aggregates import aggregate_rows

PARIS = "Europe/Paris"
OFFICE = parse_office_hours("mon-fri 09:00-12:30,13:30-18:00", "2026-04-03")
RANGE = {"from": "2026-03-27", "to": "2026-04-06", "timezone": PARIS}
TEN_YEARS_HOURS = 24 * 3650  # nothing closes by itself in these tests
FIGURES = """avgFirstResponseSeconds avgFirstResponseBusinessSeconds
  medianFirstResponseBusinessSeconds avgDurationBusinessSeconds startedOutsideOfficeHours
  slaFirstResponseMet slaFirstResponseBreached slaResolutionMet slaResolutionBreached
  slaHitPercent conversations"""
SUMMARY = f"""query($f: ReportFilter!) {{ summaryReport(filter: $f) {{
  totals {{ {FIGURES} }} daily {{ start metrics {{ {FIGURES} }} }} }} }}"""
DETAILS = """query($f: ReportFilter!) { conversationDetails(filter: $f, first: 50) { edges {
  node { contact { phone } firstResponseSeconds firstResponseBusinessSeconds durationSeconds
  durationBusinessSeconds firstResponseDueAt slaBreached } } } }"""


def paris(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(PARIS)).timestamp())


class Inbox:
    """One account's traffic: contacts write by webhook, agents answer and close by events."""

    def __init__(self, client: httpx.AsyncClient, who: TestAccount, pnid: str) -> None:
        self.client, self.who, self.pnid = client, who, pnid
        self.serial = 0

    def _next(self) -> str:
        self.serial += 1
        return f"{self.pnid}-{self.serial}"

    async def writes(self, phone: str, at: int) -> None:
        payload = inbound(f"wamid.{self._next()}", phone, at, phone_number_id=self.pnid)
        assert (await post_webhook(self.client, payload)).status_code == 200

    async def event(self, phone: str, kind: str, at: int, **fields: Any) -> None:
        event = {"id": self._next(), "type": kind, "at": at, "phone": "+" + phone, **fields}
        response = await post_events(self.client, self.who, [event])
        assert response.status_code == 200, response.text

    async def answers(self, phone: str, at: int) -> None:
        await self.event(
            phone, "message.sent", at, messageId=self._next(), agentEmail="ana@acme.test"
        )

    async def closes(self, phone: str, at: int) -> None:
        await self.event(phone, "conversation.closed", at, agentEmail="ana@acme.test")


async def new_inbox(client: httpx.AsyncClient, engine: AsyncEngine, name: str) -> Inbox:
    who = await create_test_account(engine, name, PARIS, auto_close_hours=TEN_YEARS_HOURS)
    pnid = f"pnid-sla-{who.id}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    return Inbox(client, who, pnid)


A, B, C = "33600000101", "33600000102", "33600000103"


async def three_conversations(inbox: Inbox) -> None:
    # A: Friday 27 March 17:55 (CET), answered Monday 30 March 09:05 (CEST, after the spring
    # change), closed 11:00. Business: Friday 5 min + Monday 5 min = 600 s; calendar: 16:55Z
    # Friday to 07:05Z Monday = 3 days - 9 h 50 min = 223,800 s. Due 15 office minutes later:
    # Monday 09:10 -> met. Duration: 5 min + Monday 09:00-11:00 = 7,500 s; due 8 office hours
    # later (5 + 210 + 265 min): Monday 17:55 -> met.
    await inbox.writes(A, paris("2026-03-27 17:55"))
    await inbox.answers(A, paris("2026-03-30 09:05"))
    await inbox.closes(A, paris("2026-03-30 11:00"))
    # B: Tuesday 31 March 07:30, before the office opens (started outside office hours),
    # answered 08:10, still before it opens: 0 office seconds (2,400 calendar). Due 09:15 ->
    # met. Never closed: resolution due after the whole day's 480 office minutes, Tuesday
    # 18:00 -> breached while still open (long past).
    await inbox.writes(B, paris("2026-03-31 07:30"))
    await inbox.answers(B, paris("2026-03-31 08:10"))
    # C: Thursday 2 April 17:50, Friday 3 April closed (a holiday), the weekend, answered
    # Monday 6 April 09:20: 10 + 20 = 1,800 office seconds (calendar: 3 days 15 h 30 min =
    # 315,000 s). Due Monday 09:05 -> breached. Closed 09:30: 2,400 office seconds; due
    # Monday 17:50 -> met.
    await inbox.writes(C, paris("2026-04-02 17:50"))
    await inbox.answers(C, paris("2026-04-06 09:20"))
    await inbox.closes(C, paris("2026-04-06 09:30"))


async def summary(inbox: Inbox, **extra: Any) -> dict[str, Any]:
    body = await graphql(inbox.client, inbox.who, SUMMARY, {"f": {**RANGE, **extra}})
    assert "errors" not in body, body
    return body["data"]["summaryReport"]  # type: ignore[no-any-return]


async def details(inbox: Inbox, **extra: Any) -> dict[str, dict[str, Any]]:
    body = await graphql(inbox.client, inbox.who, DETAILS, {"f": {**RANGE, **extra}})
    assert "errors" not in body, body
    edges = body["data"]["conversationDetails"]["edges"]
    return {edge["node"].pop("contact")["phone"]: edge["node"] for edge in edges}


async def assert_kept_equals_rebuilt(engine: AsyncEngine, account_id: int) -> None:
    kept = await aggregate_rows(engine, account_id)
    async with transaction(engine) as session:
        await rebuild_aggregates(session, account_id)
    assert await aggregate_rows(engine, account_id) == kept


CALENDAR = {"+" + A: 223_800, "+" + B: 2_400, "+" + C: 315_000}


async def test_office_hours_and_targets_worked_by_hand(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    inbox = await new_inbox(client, engine, "Office")
    async with transaction(engine) as session:
        await accounts.set_office_hours(session, inbox.who.id, OFFICE)
        await accounts.set_service_level(session, inbox.who.id, 15 * 60, 8 * 3600)
    await three_conversations(inbox)

    report = await summary(inbox)
    assert report["totals"] == {
        "conversations": 3,
        "avgFirstResponseSeconds": (223_800 + 2_400 + 315_000) / 3,
        "avgFirstResponseBusinessSeconds": (600 + 0 + 1_800) / 3,
        "medianFirstResponseBusinessSeconds": 600.0,
        "avgDurationBusinessSeconds": (7_500 + 2_400) / 2,  # B is open
        "startedOutsideOfficeHours": 1,  # B
        "slaFirstResponseMet": 2,  # A, B
        "slaFirstResponseBreached": 1,  # C
        "slaResolutionMet": 2,  # A, C
        "slaResolutionBreached": 1,  # B, still open
        "slaHitPercent": 400 / 6,  # 4 targets met of 6
    }
    by_day = {row["start"][:10]: row["metrics"] for row in report["daily"]}
    assert by_day["2026-03-27"]["avgFirstResponseBusinessSeconds"] == 600.0
    assert by_day["2026-03-31"]["startedOutsideOfficeHours"] == 1
    assert by_day["2026-04-02"]["slaHitPercent"] == 50.0
    assert by_day["2026-04-01"]["slaHitPercent"] is None  # nothing judged that day

    rows = await details(inbox)
    assert rows == {
        "+" + A: {
            "firstResponseSeconds": 223_800,
            "firstResponseBusinessSeconds": 600,
            "durationSeconds": 223_800 + 6_900,  # to Monday 11:00
            "durationBusinessSeconds": 7_500,
            "firstResponseDueAt": "2026-03-30T07:10:00Z",  # Monday 09:10 CEST
            "slaBreached": False,
        },
        "+" + B: {
            "firstResponseSeconds": 2_400,
            "firstResponseBusinessSeconds": 0,
            "durationSeconds": None,
            "durationBusinessSeconds": None,
            "firstResponseDueAt": "2026-03-31T07:15:00Z",
            "slaBreached": True,
        },
        "+" + C: {
            "firstResponseSeconds": 315_000,
            "firstResponseBusinessSeconds": 1_800,
            "durationSeconds": 315_600,
            "durationBusinessSeconds": 2_400,
            "firstResponseDueAt": "2026-04-06T07:05:00Z",
            "slaBreached": True,
        },
    }
    # The breaches, as a drill-down (raw rows), agree with the aggregates' counts.
    assert set(await details(inbox, slaBreached=True)) == {"+" + B, "+" + C}
    assert set(await details(inbox, slaBreached=False)) == {"+" + A}
    breached = await summary(inbox, slaBreached=True)
    assert breached["totals"]["conversations"] == 2
    assert breached["totals"]["slaHitPercent"] == 50.0  # B 1 of 2, C 1 of 2
    await assert_kept_equals_rebuilt(engine, inbox.who.id)

    # The schedule changes: open around the clock. Business time is calendar time, every
    # deadline 15 min (8 h) after the start: every first response is late, A and C closed
    # late (more than 8 h), B open past its deadline.
    async with transaction(engine) as session:
        await accounts.set_office_hours(
            session, inbox.who.id, parse_office_hours("mon-sun 00:00-24:00")
        )
    totals = (await summary(inbox))["totals"]
    assert totals["avgFirstResponseBusinessSeconds"] == totals["avgFirstResponseSeconds"]
    assert totals["avgDurationBusinessSeconds"] == (230_700 + 315_600) / 2
    assert totals["startedOutsideOfficeHours"] == 0
    assert (totals["slaFirstResponseMet"], totals["slaFirstResponseBreached"]) == (0, 3)
    assert (totals["slaResolutionMet"], totals["slaResolutionBreached"]) == (0, 3)
    assert totals["slaHitPercent"] == 0.0
    await assert_kept_equals_rebuilt(engine, inbox.who.id)

    # Back to office hours, with targets in calendar time: 15 min from 17:55 is 18:10 Friday
    # (A late; B answered in 40 min, late), C late; resolution 8 calendar hours: all late.
    async with transaction(engine) as session:
        await accounts.set_office_hours(session, inbox.who.id, OFFICE)
        await accounts.set_service_level(
            session, inbox.who.id, 15 * 60, 8 * 3600, business_hours=False
        )
    totals = (await summary(inbox))["totals"]
    assert totals["avgFirstResponseBusinessSeconds"] == 800.0
    assert (totals["slaFirstResponseMet"], totals["slaFirstResponseBreached"]) == (0, 3)
    first = await details(inbox)
    assert first["+" + A]["firstResponseDueAt"] == "2026-03-27T17:10:00Z"

    # No targets, no office hours: calendar time, nothing judged.
    async with transaction(engine) as session:
        await accounts.set_service_level(session, inbox.who.id, None, None)
        await accounts.set_office_hours(session, inbox.who.id, None)
    totals = (await summary(inbox))["totals"]
    assert totals["avgFirstResponseBusinessSeconds"] == totals["avgFirstResponseSeconds"]
    assert totals["slaHitPercent"] is None
    assert totals["slaFirstResponseBreached"] == totals["startedOutsideOfficeHours"] == 0
    assert all(row["firstResponseDueAt"] is None for row in (await details(inbox)).values())
    await assert_kept_equals_rebuilt(engine, inbox.who.id)


async def test_the_targets_through_graphql(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    inbox = await new_inbox(client, engine, "Targets")
    query = "{ serviceLevel { firstResponseSeconds resolutionSeconds businessHours } }"
    assert await graphql(client, inbox.who, query) == {"data": {"serviceLevel": None}}
    async with transaction(engine) as session:
        await accounts.set_service_level(session, inbox.who.id, None, 8 * 3600, False)
    assert await graphql(client, inbox.who, query) == {
        "data": {
            "serviceLevel": {
                "firstResponseSeconds": None,
                "resolutionSeconds": 28_800,
                "businessHours": False,
            }
        }
    }
    other = await new_inbox(client, engine, "Other")
    assert await graphql(client, other.who, query) == {"data": {"serviceLevel": None}}


async def test_an_overnight_shift_across_midnight(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Night shifts Monday to Friday, 22:00-06:00 (Saturday 00:00-06:00 is Friday's)."""
    inbox = await new_inbox(client, engine, "Night")
    async with transaction(engine) as session:
        await accounts.set_office_hours(
            session, inbox.who.id, parse_office_hours("mon-fri 22:00-06:00")
        )
        await accounts.set_service_level(session, inbox.who.id, 30 * 60, None)
    # Tuesday 14 April 05:50, answered 22:10 that evening: 10 + 10 = 1,200 office seconds;
    # due 30 office minutes later: Tuesday 22:20 -> met.
    await inbox.writes(A, paris("2026-04-14 05:50"))
    await inbox.answers(A, paris("2026-04-14 22:10"))
    # Saturday 18 April 05:45 (Friday's shift), answered Monday 20 April 22:30: 15 + 30 =
    # 2,700 office seconds; due Monday 22:15 -> breached. Closed Tuesday 00:30: the shift
    # across midnight counts whole, 15 + 120 + 30 = 9,900 office seconds of duration.
    await inbox.writes(B, paris("2026-04-18 05:45"))
    await inbox.answers(B, paris("2026-04-20 22:30"))
    await inbox.closes(B, paris("2026-04-21 00:30"))
    week = {"from": "2026-04-13", "to": "2026-04-19"}
    rows = await details(inbox, **week)
    assert {phone: row["firstResponseBusinessSeconds"] for phone, row in rows.items()} == {
        "+" + A: 1_200,
        "+" + B: 2_700,
    }
    assert rows["+" + B]["durationBusinessSeconds"] == 9_900
    assert rows["+" + A]["firstResponseDueAt"] == "2026-04-14T20:20:00Z"  # 22:20 CEST
    assert rows["+" + B]["firstResponseDueAt"] == "2026-04-20T20:15:00Z"
    totals = (await summary(inbox, **week))["totals"]
    assert totals["startedOutsideOfficeHours"] == 0
    assert (totals["slaFirstResponseMet"], totals["slaFirstResponseBreached"]) == (1, 1)
    assert totals["slaHitPercent"] == 50.0
    await assert_kept_equals_rebuilt(engine, inbox.who.id)


async def test_breached_once_the_deadline_passes_while_waiting(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Neither met nor breached while in time; the auto-close job's pass marks it breached
    when the deadline has passed, and an answer after that keeps it breached."""
    inbox = await new_inbox(client, engine, "Waiting")
    async with transaction(engine) as session:
        # Calendar time: the test's instants are today's, whatever the weekday.
        await accounts.set_service_level(session, inbox.who.id, 15 * 60, None, business_hours=False)
    start = now() - 60
    await inbox.writes(A, start)
    day = datetime.fromtimestamp(start, ZoneInfo(PARIS)).date().isoformat()
    today = {"from": day, "to": day, "timezone": PARIS}

    async def judged() -> tuple[int, int]:
        body = await graphql(inbox.client, inbox.who, SUMMARY, {"f": today})
        totals = body["data"]["summaryReport"]["totals"]
        return totals["slaFirstResponseMet"], totals["slaFirstResponseBreached"]

    assert await judged() == (0, 0)
    assert await close_due(engine, now=start + 15 * 60) == 0  # due, not past
    assert await judged() == (0, 0)
    assert await close_due(engine, now=start + 15 * 60 + 1) == 0  # nothing closes; breached
    assert await judged() == (0, 1)
    await inbox.answers(A, start + 20 * 60)
    assert await judged() == (0, 1)
    await assert_kept_equals_rebuilt(engine, inbox.who.id)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("8h", 28_800), ("1h30m", 5_400), ("2d", 172_800), ("90s", 90)],
)
def test_targets_read_as_durations(text: str, seconds: int) -> None:
    assert accounts.parse_target(text, "first-response") == seconds


@pytest.mark.parametrize("text", ["", "15", "m15", "15 minutes", "30m1h", "0m", "1h1h", "-5m"])
def test_a_bad_target_names_the_option(text: str) -> None:
    with pytest.raises(BadInput) as refused:
        accounts.parse_target(text, "first-response")
    assert refused.value.field == "first-response"
