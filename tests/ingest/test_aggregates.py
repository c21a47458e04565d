"""Report aggregates kept at ingestion answer exactly what the raw rows answer.

Property: random inbox histories posted through the real ingestion paths (signed webhooks,
`POST /v1/events`, the auto-close job), with instants out of order and around a daylight-saving
change, leave every report (summary, agents, tags) identical for random filters whether the
aggregates answer (the account's zone) or the raw rows do (a zone with the same offsets under
another name), and leave the same aggregate rows as a rebuild from the raw rows.
Worked examples: the aggregate rows after a scripted history, figures written out by hand.
"""

import asyncio
import itertools
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap64
from sqlalchemy import Engine, Table, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from typer.testing import CliRunner

from api import accounts
from api.app import create_app
from api.cli import app as cli
from ingest import aggregates as maintenance
from ingest.autoclose import close_due
from ingest.buttons import click_details, create_button, record_click
from models.cells import CLICK_DIMENSIONS, CONVERSATION_CELLS, SMALLEST_FIRST
from models.db import create_engine, session_factory, transaction
from models.office_hours import parse_office_hours
from models.settings import get_settings
from resolvers import aggregates
from resolvers.filters import Filter, SecondsRange
from tests.conftest import (
    TestAccount,
    counting_statements,
    create_test_account,
    graphql,
    make_settings,
)
from tests.ingest.support import (
    add_channel,
    inbound,
    post_events,
    post_webhook,
    status_payload,
    wait_for_depth,
    writer_of,
)
from tests.reports.test_export import export_rows

HOUR = 3600
ZONE = "Europe/Paris"
# Two accounts in three get them (and targets: 10 min to respond, 2 h to close).
OFFICE_HOURS = parse_office_hours("mon-fri 08:00-12:00,13:00-19:00; sat 22:00-02:00", "2026-12-24")
RAW_ZONE = "Europe/Brussels"  # the same offsets as Paris in these years: the raw path answers
NOW = int(time.time())
# Paris leaves summer time at 2026-10-25 01:00 UTC (03:00 CEST -> 02:00 CET): a 25-hour day.
DST_END = int(datetime(2026, 10, 25, 1, 0, tzinfo=ZoneInfo("UTC")).timestamp())
ANCHORS = (DST_END, NOW)
CONTACTS = ("33610000001", "33610000002", "33610000003")
AGENTS = ("ana@acme.test", "bo@acme.test", "cy@acme.test")
TAGS = ("Sales", "support", "Billing")
# A plan step that finds rows by the account alone, or the account and a range.
ACCOUNT_WALK = re.compile(r"\(account_id=\?(?: AND \w+[<>]=?\?)*\)$")
STATUSES = ("sent", "delivered", "read", "played", "failed")
BOUNDED = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

METRICS = """conversations inboundConversations distinctContacts messages inboundMessages
  outboundMessages closedConversations avgDurationSeconds avgFirstResponseSeconds avgRating
  ratedConversations avgMessagesPerConversation csatPercent deliveredMessages readMessages
  failedMessages
  firstResponseDistribution { upToSeconds conversations }
  durationDistribution { upToSeconds conversations } ratingDistribution { rating conversations }
  avgFirstResponseBusinessSeconds avgDurationBusinessSeconds startedOutsideOfficeHours
  slaFirstResponseMet slaFirstResponseBreached slaResolutionMet slaResolutionBreached
  slaHitPercent windowMissedConversations"""
REPORTS = {
    "summary": f"""query($f: ReportFilter!) {{ summaryReport(filter: $f) {{
      totals {{ {METRICS} }} daily {{ start metrics {{ {METRICS} }} }}
      weekly {{ start metrics {{ {METRICS} }} }} bySource {{ source metrics {{ {METRICS} }} }}
      failureReasons {{ code title messages }} }} }}""",
    "heatmap": f"""query($f: ReportFilter!) {{ summaryReport(filter: $f) {{
      heatmap {{ weekday hour metrics {{ {METRICS} }} }} }} }}""",
    "agents": f"""query($f: ReportFilter!) {{ agentReport(filter: $f) {{ rows {{
      agent {{ email }} sentMessages metrics {{ {METRICS} }}
      daily {{ start metrics {{ {METRICS} }} }} }} }} }}""",
    "tags": f"""query($f: ReportFilter!) {{ tagReport(filter: $f) {{ rows {{
      tag {{ name }} metrics {{ {METRICS} }} daily {{ start metrics {{ {METRICS} }} }} }} }} }}""",
    "widget": """query($f: ReportFilter!) { widgetReport(filter: $f) { clicks conversations
      daily { start clicks conversations } byButton { key clicks conversations }
      byReferrer { key clicks conversations } byUtmCampaign { key clicks conversations }
      byUtmMedium { key clicks conversations } byUtmSource { key clicks conversations }
      byUtmTerm { key clicks conversations } byUtmContent { key clicks conversations } } }""",
}


COUNT = "query($f: ReportFilter!) { conversationDetails(filter: $f) { totalCount } }"


# --- random histories ------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str
    contact: int = 0
    at: int = 0
    agent: int | None = None
    tag: int = 0
    value: int = 0  # a rating, a source index, or hours ahead for the auto-close job


# Around the daylight-saving change (long closed by now), or in the last hours (still open:
# the auto-close job and late messages decide).
INSTANTS = st.one_of(
    st.integers(-36 * 60, 36 * 60).map(lambda minutes: DST_END + 60 * minutes),
    st.integers(-5 * 60, 0).map(lambda minutes: NOW + 60 * minutes),
)
CONTACT = st.integers(0, len(CONTACTS) - 1)
AGENT = st.integers(0, len(AGENTS) - 1)
MAYBE_AGENT = st.none() | AGENT
# The conversation events of a history (all but message.sent).
CONVERSATION_EVENT_STEP = st.one_of(
    st.builds(Step, st.just("started"), CONTACT, INSTANTS, AGENT, value=st.integers(0, 1)),
    st.builds(Step, st.just("assigned"), CONTACT, INSTANTS, MAYBE_AGENT),
    st.builds(Step, st.just("tagged"), CONTACT, INSTANTS, tag=st.integers(0, len(TAGS) - 1)),
    st.builds(Step, st.just("untagged"), CONTACT, INSTANTS, tag=st.integers(0, len(TAGS) - 1)),
    st.builds(Step, st.just("closed"), CONTACT, INSTANTS, MAYBE_AGENT),
    st.builds(Step, st.just("rated"), CONTACT, INSTANTS, value=st.integers(1, 5)),
)
STEP = st.one_of(
    st.builds(Step, st.just("inbound"), CONTACT, INSTANTS),
    # An outbound message, then (`tag` > 0) the status STATUSES[tag - 1] of it.
    st.builds(Step, st.just("sent"), CONTACT, INSTANTS, MAYBE_AGENT, tag=st.integers(0, 5)),
    CONVERSATION_EVENT_STEP,
    st.builds(Step, st.just("autoclose"), value=st.integers(0, 30)),
    # A delivery status (of STATUSES by `tag`): of an outbound message posted before (the
    # `value`th, round robin) when `value` < 20, else of the message the `value`th step posts,
    # if any: inbound (ignored), or still to come (kept pending).
    st.builds(
        Step,
        st.just("status"),
        at=INSTANTS,
        tag=st.integers(0, 4),
        value=st.integers(0, 29),
    ),
    # A website button click (now), with UTM values by `tag`, and the contact writing with its
    # code (attributed) when `value` is 1.
    st.builds(
        Step,
        st.just("click"),
        CONTACT,
        tag=st.integers(0, len(TAGS) - 1),
        value=st.integers(0, 1),
    ),
)


def anchor_days() -> list[date]:
    return sorted({datetime.fromtimestamp(a, ZoneInfo(ZONE)).date() for a in ANCHORS})


@st.composite
def report_filters(draw: st.DrawFn) -> dict[str, Any]:
    middle = draw(st.sampled_from(anchor_days()))
    flt: dict[str, Any] = {
        "from": (middle - timedelta(days=draw(st.integers(0, 3)))).isoformat(),
        "to": (middle + timedelta(days=draw(st.integers(0, 2)))).isoformat(),
    }
    if draw(st.booleans()):
        flt["sources"] = draw(st.lists(st.sampled_from(("FLOW", "INBOUND", "INBOX")), max_size=2))
    if draw(st.booleans()):
        flt["agentEmails"] = draw(st.lists(st.sampled_from((*AGENTS, "nobody@x.test")), max_size=2))
    if draw(st.integers(0, 3)) == 0:
        flt["conversationTags"] = draw(st.lists(st.sampled_from(TAGS), max_size=2))
    return flt


def event_of(step: Step, number: int, pnid: str) -> dict[str, Any]:
    """The inbox event of a step (message.sent or a conversation event), the `number`th."""
    event = {"id": f"e{number}", "type": f"conversation.{step.kind}", "at": step.at}
    event["phone"] = "+" + CONTACTS[step.contact]
    agent = None if step.agent is None else AGENTS[step.agent]
    if step.kind == "sent":
        event.update(type="message.sent", messageId=f"wamid.{pnid}.{number}")
    elif step.kind == "started":
        event["source"] = ("FLOW", "INBOX")[step.value]
        agent = agent if step.value == 1 else None
    elif step.kind in ("tagged", "untagged"):
        event["tag"] = TAGS[step.tag]
    elif step.kind == "rated":
        event["rating"] = step.value
    if agent is not None or step.kind == "assigned":
        event["agentEmail"] = agent
    return event


class History:
    """Posts steps through the ingestion paths of one account."""

    def __init__(self, client: httpx.AsyncClient, who: TestAccount, pnid: str, key: str) -> None:
        self.client, self.who, self.pnid, self.key = client, who, pnid, key
        self.serial = itertools.count()
        self.outbound: list[str] = []  # the wamids of the outbound messages posted

    async def post(self, step: Step, engine: AsyncEngine) -> None:
        number = next(self.serial)
        wa_id = CONTACTS[step.contact]
        if step.kind == "click":
            await self.click(step, number, wa_id)
            return
        if step.kind == "inbound":
            payload = inbound(
                f"wamid.{self.pnid}.{number}", wa_id, step.at, phone_number_id=self.pnid
            )
            assert (await post_webhook(self.client, payload)).status_code == 200
            return
        if step.kind == "autoclose":
            await close_due(engine, now=NOW + step.value * HOUR)
            return
        if step.kind == "status":
            wamid = f"wamid.{self.pnid}.{step.value}"
            if step.value < 20 and self.outbound:
                wamid = self.outbound[step.value % len(self.outbound)]
            await self.status(wamid, STATUSES[step.tag], step.at)
            return
        event = event_of(step, number, self.pnid)
        response = await post_events(self.client, self.who, [event])
        if step.kind == "sent" and response.status_code == 200:
            self.outbound.append(event["messageId"])
            if step.tag:
                await self.status(event["messageId"], STATUSES[step.tag - 1], step.at + 30)
        # A conversation event for a contact without conversation, or a close before the start,
        # is refused as a whole (422): nothing stored, the history goes on.
        assert response.status_code in (200, 422), response.text

    async def status(self, wamid: str, name: str, at: int) -> None:
        errors = [{"code": 131000 + len(wamid) % 3, "title": "Failed"}] if name == "failed" else []
        payload = status_payload(
            wamid, name, at, phone_number_id=self.pnid, **({"errors": errors} if errors else {})
        )
        assert (await post_webhook(self.client, payload)).status_code == 200

    async def click(self, step: Step, number: int, wa_id: str) -> None:
        utm = {"utm_campaign": TAGS[step.tag], "utm_source": ("news", None, " ")[step.tag]}
        response = await self.client.get(
            f"/w/{self.key}",
            params={name: value for name, value in utm.items() if value is not None},
            headers={"Referer": f"https://shop.test/{step.contact}?q=1"} if step.tag else {},
        )
        assert response.status_code == 302, response.text
        if step.value:
            text = unquote(response.headers["location"].split("text=", 1)[1])
            payload = inbound(
                f"wamid.{self.pnid}.{number}",
                wa_id,
                int(time.time()),
                text=text,
                phone_number_id=self.pnid,
            )
            assert (await post_webhook(self.client, payload)).status_code == 200


_accounts = itertools.count(1)


async def new_account(engine: AsyncEngine) -> tuple[TestAccount, str, str]:
    number = next(_accounts)
    who = await create_test_account(engine, f"Prop {number}", ZONE, auto_close_hours=3)
    pnid = f"pnid-{number}-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    async with transaction(engine) as session:
        button = await create_button(session, who.id, pnid, ("Pricing", "Home")[number % 2])
        if number % 3:  # office hours (an overnight shift among them) and targets
            await accounts.set_office_hours(session, who.id, OFFICE_HOURS)
            await accounts.set_service_level(session, who.id, 600, 7200, bool(number % 2))
    return who, pnid, button.key


# --- reading both paths ------------------------------------------------------------------------


async def report(client: httpx.AsyncClient, who: TestAccount, name: str, flt: Any) -> Any:
    body = await graphql(client, who, REPORTS[name], {"f": flt})
    assert "errors" not in body, body
    return body["data"]


async def assert_paths_agree(
    client: httpx.AsyncClient, engine: AsyncEngine, who: TestAccount, flt: dict[str, Any]
) -> None:
    async with session_factory(engine)() as session:
        days = (date.fromisoformat(flt["from"]), date.fromisoformat(flt["to"]))
        kept = Filter(*days, ZONE, conversation_tags=tuple(flt.get("conversationTags", ())))
        raw = Filter(*days, RAW_ZONE)
        used = await aggregates.table_for(session, who.id, kept, by_tag=False, by_assignee=False)
        assert (used is not None) == (len(kept.conversation_tags) <= 1)
        hours = await aggregates.table_for(
            session, who.id, kept, by_tag=False, by_assignee=False, hourly=True
        )
        assert (hours is not None) == (len(kept.conversation_tags) <= 1)
        assert (
            await aggregates.table_for(session, who.id, raw, by_tag=False, by_assignee=False)
            is None
        )
    for name in REPORTS:
        through_aggregates = await report(client, who, name, flt)
        through_rows = await report(client, who, name, {**flt, "timezone": RAW_ZONE})
        assert through_aggregates == through_rows, (name, flt)
    # Drill-downs the cells count: by the local hour conversations started (the hourly cells,
    # around the change of time of the histories), by the latest rating, answered or not.
    night = {"weekdays": [1, 6, 7], "hours": [0, 1, 2, 3, 22, 23]}
    for drill in (
        night,
        {"ratings": [4, 5, 4]},
        {"answered": True},
        {"answered": False, **night},
        {"ratings": [1, 2, 3], "weekdays": [7]},
        {"firstResponseSeconds": {"min": 61, "max": 301}},  # the bin (60, 300]
        {"firstResponseSeconds": {"max": 61}, **night},
        {"durationSeconds": {"min": 3601}},  # every bin above 3600
        {"durationSeconds": {"min": 901, "max": 14401}},
    ):
        counted = await graphql(client, who, COUNT, {"f": {**flt, **drill}})
        listed = await graphql(client, who, COUNT, {"f": {**flt, **drill, "timezone": RAW_ZONE}})
        assert counted == listed, drill
    # The reports drilled down to start hours: conversation figures from the hourly cells.
    for name in ("summary", "agents", "tags", "heatmap"):
        through_aggregates = await report(client, who, name, {**flt, **night})
        through_rows = await report(client, who, name, {**flt, **night, "timezone": RAW_ZONE})
        assert through_aggregates == through_rows, (name, flt)


FIGURE_TABLES = (
    *(aggregate.table for aggregate in CONVERSATION_CELLS),
    maintenance.AGENT_MESSAGES,
    maintenance.CLICK_DAILY,
)


async def aggregate_rows(engine: AsyncEngine, account_id: int) -> dict[str, list[Any]]:
    """Every aggregate and record row of the account, cells whose figures are all zero left out
    (a delta may leave one behind; a rebuild writes none)."""
    found = {}
    async with session_factory(engine)() as session:
        for table in (*FIGURE_TABLES, maintenance.LEDGER, maintenance.LEDGER_TAG):
            rows = (
                await session.execute(
                    select(table)
                    .where(table.c.account_id == account_id)
                    .order_by(*table.primary_key.columns)
                )
            ).all()
            found[table.name] = [
                tuple(_readable(name, value) for name, value in row._mapping.items())
                for row in rows
                if not _all_zero(table, row)
            ]
    return found


def _readable(name: str, value: Any) -> Any:
    """A cell's contacts as the sorted ids its bitmap holds (one set, one value, whatever
    containers the bitmap chose); an empty set as none."""
    if name != "contacts":
        return value
    return tuple(BitMap64.deserialize(value)) if value else ()


def _all_zero(table: Table, row: Any) -> bool:
    if table not in FIGURE_TABLES:
        return False
    keys = {column.name for column in table.primary_key.columns}
    return all(
        value == 0 or (name == "contacts" and not value)
        for name, value in row._mapping.items()
        if name not in keys
    )


# --- the property ------------------------------------------------------------------------------


@BOUNDED
@given(
    steps=st.lists(STEP, min_size=1, max_size=30),
    filters=st.lists(report_filters(), min_size=1, max_size=3),
)
async def test_aggregates_answer_what_raw_rows_answer(
    client: httpx.AsyncClient, engine: AsyncEngine, steps: list[Step], filters: list[Any]
) -> None:
    who, pnid, key = await new_account(engine)
    history = History(client, who, pnid, key)
    for step in steps:
        await history.post(step, engine)
    for flt in filters:
        await assert_paths_agree(client, engine, who, flt)
    kept = await aggregate_rows(engine, who.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert await aggregate_rows(engine, who.id) == kept


# --- worked examples -----------------------------------------------------------------------------

FIGURE_NAMES = maintenance.FIGURES
ANA = "33612345678"


def day(text: str) -> int:
    """The day number of a calendar date (days since 1970-01-01)."""
    return (date.fromisoformat(text) - date(1970, 1, 1)).days


def figures(**values: int) -> dict[str, int]:
    """A cell's figures: the ones given, zero for the others."""
    return {name: values.get(name, 0) for name in FIGURE_NAMES}


async def cells(engine: AsyncEngine, account_id: int) -> dict[str, dict[tuple[Any, ...], Any]]:
    """Each aggregate table's non-zero cells as {key: figures}."""
    found: dict[str, dict[tuple[Any, ...], Any]] = {}
    for name, rows in (await aggregate_rows(engine, account_id)).items():
        table = {t.name: t for t in FIGURE_TABLES}.get(name)
        if table is None:  # the records, not cells
            continue
        keys = [c.name for c in table.primary_key.columns if c.name != "account_id"]
        names = [c.name for c in table.columns]
        found[name] = {}
        for row in rows:
            mapping = dict(zip(names, row, strict=True))
            key = tuple(mapping[k] for k in keys)
            values = {
                n: v
                for n, v in mapping.items()
                if n not in keys and n not in ("account_id", "contacts")
            }
            found[name][key] = values if len(values) > 1 else next(iter(values.values()))
    return found


async def agent_id(engine: AsyncEngine, account_id: int, email: str) -> int:
    from models import Agent

    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(Agent.id).where(Agent.account_id == account_id, Agent.email == email)  # type: ignore[arg-type]
        )
    assert found is not None
    return found


async def send(client: httpx.AsyncClient, who: TestAccount, **event: Any) -> None:
    event.setdefault("phone", "+" + ANA)
    response = await post_events(client, who, [{"id": f"e{next(_accounts)}", **event}])
    assert response.status_code == 200, response.text


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC")).timestamp())


async def test_each_change_moves_exact_figures(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    who = await create_test_account(engine, "Worked", "UTC")
    pnid = f"pnid-worked-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    payload = inbound("wamid.w1", ANA, utc("2026-03-10 23:50"), phone_number_id=pnid)
    assert (await post_webhook(client, payload)).status_code == 200
    at = utc("2026-03-11 00:05")
    await send(client, who, type="message.sent", at=at, messageId="w2", agentEmail=AGENTS[0])
    await send(client, who, type="conversation.tagged", at=at + 60, tag="Sales")
    await send(client, who, type="conversation.assigned", at=at + 120, agentEmail=AGENTS[1])
    await send(
        client, who, type="conversation.closed", at=utc("2026-03-11 00:20"), agentEmail=AGENTS[1]
    )
    await send(client, who, type="conversation.rated", at=utc("2026-03-11 00:30"), rating=4)
    # Out of order: the contact's first message arrives last and moves the start to 23:40.
    payload = inbound("wamid.w3", ANA, utc("2026-03-10 23:40"), phone_number_id=pnid)
    assert (await post_webhook(client, payload)).status_code == 200

    ana, bo = [await agent_id(engine, who.id, email) for email in AGENTS[:2]]
    sales = await tag_id(engine, who.id, "sales")
    started = figures(
        conversations=1,
        inbound_conversations=1,
        closed_conversations=1,
        duration_sum=40 * 60,  # 23:40 -> 00:20
        first_response_sum=25 * 60,  # 23:40 -> 00:05
        first_response_count=1,
        rating_sum=4,
        rated_conversations=1,
        messages=2,
        inbound_messages=2,
        message_count_sum=3,  # w1, w2 and w3, whichever day each was sent
        csat_points=100,  # rated 4
        frt_le_1800=1,  # 1500 s: above 900, up to 1800
        duration_le_3600=1,  # 2400 s
        rating_4=1,
        # No office hours: business time is calendar time.
        first_response_business_sum=25 * 60,
        duration_business_sum=40 * 60,
    )
    replied = figures(messages=1, outbound_messages=1)
    d10, d11 = day("2026-03-10"), day("2026-03-11")
    h23, h0 = d10 * 24 + 23, d11 * 24
    assert await cells(engine, who.id) == {
        "daily_figures": {(d10, "INBOUND", bo): started, (d11, "INBOUND", bo): replied},
        "source_daily_figures": {(d10, "INBOUND"): started, (d11, "INBOUND"): replied},
        "tag_daily_figures": {(d10, sales, "INBOUND"): started, (d11, sales, "INBOUND"): replied},
        "tag_agent_daily_figures": {
            (bo, d10, sales, "INBOUND"): started,
            (bo, d11, sales, "INBOUND"): replied,
        },
        "tag_pair_daily_figures": {
            (sales, d10, sales, "INBOUND"): started,
            (sales, d11, sales, "INBOUND"): replied,
        },
        # The local hours: 23:00-24:00 on the 10th (the start, w1 and w3), 00:00-01:00 on the 11th.
        "hourly_figures": {(h23, "INBOUND"): started, (h0, "INBOUND"): replied},
        "agent_hourly_figures": {(bo, h23, "INBOUND"): started, (bo, h0, "INBOUND"): replied},
        "tag_hourly_figures": {(sales, h23, "INBOUND"): started, (sales, h0, "INBOUND"): replied},
        "agent_daily_messages": {(d11, ana): 1},  # Ana sent the reply, whoever has it now
        "click_daily_figures": {},
    }

    await send(client, who, type="conversation.untagged", at=at + 600, tag="SALES")
    await send(client, who, type="conversation.assigned", at=at + 660, agentEmail=None)
    assert await cells(engine, who.id) == {
        "daily_figures": {(d10, "INBOUND", 0): started, (d11, "INBOUND", 0): replied},
        "source_daily_figures": {(d10, "INBOUND"): started, (d11, "INBOUND"): replied},
        "tag_daily_figures": {},
        "tag_agent_daily_figures": {},
        "tag_pair_daily_figures": {},
        "hourly_figures": {(h23, "INBOUND"): started, (h0, "INBOUND"): replied},
        "agent_hourly_figures": {(0, h23, "INBOUND"): started, (0, h0, "INBOUND"): replied},
        "tag_hourly_figures": {},
        "agent_daily_messages": {(d11, ana): 1},
        "click_daily_figures": {},
    }


async def contact_sets(engine: AsyncEngine, account_id: int) -> dict[str, dict[Any, Any]]:
    """Each table of conversation cells' non-empty contact sets as {key: contact ids}."""
    found: dict[str, dict[Any, Any]] = {}
    async with session_factory(engine)() as session:
        for aggregate in CONVERSATION_CELLS:
            table = aggregate.table
            rows = await session.execute(
                select(*(table.c[key] for key in aggregate.keys), table.c.contacts).where(
                    table.c.account_id == account_id
                )
            )
            found[table.name] = {
                tuple(row[:-1]): set(BitMap64.deserialize(row[-1])) for row in rows if row[-1]
            }
    return found


async def contact_id(engine: AsyncEngine, account_id: int, phone: str) -> int:
    from models import Contact

    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(Contact.id).where(Contact.account_id == account_id, Contact.phone == phone)  # type: ignore[arg-type]
        )
    assert found is not None
    return found


async def test_each_cell_keeps_the_contacts_of_its_conversations(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A contact stays in a cell while one of its conversations counts there: worked by hand
    through two conversations of one contact and one of another on the same day."""
    who = await create_test_account(engine, "Contacts", "UTC", auto_close_hours=1)
    ann, bea = "+33611111111", "+33622222222"
    at = utc("2026-03-10 10:00")
    agent = dict(type="message.sent", agentEmail=AGENTS[0])
    await send(client, who, **agent, at=at, messageId="c1", phone=ann)  # Ann's first, by Ana
    await send(client, who, **agent, at=at + 2 * 3600, messageId="c2", phone=ann)  # a second
    await send(client, who, **agent, at=at + 300, messageId="c3", phone=bea)  # Bea's, by Ana
    a, b = await contact_id(engine, who.id, ann), await contact_id(engine, who.id, bea)
    ana = await agent_id(engine, who.id, AGENTS[0])
    d10, h10, h12 = day("2026-03-10"), day("2026-03-10") * 24 + 10, day("2026-03-10") * 24 + 12
    found = await contact_sets(engine, who.id)
    assert found["source_daily_figures"] == {(d10, "INBOX"): {a, b}}
    assert found["daily_figures"] == {(d10, "INBOX", ana): {a, b}}
    assert found["hourly_figures"] == {(h10, "INBOX"): {a, b}, (h12, "INBOX"): {a}}
    assert found["agent_hourly_figures"] == {(ana, h10, "INBOX"): {a, b}, (ana, h12, "INBOX"): {a}}

    # Ann's second conversation goes to Bo: she stays in Ana's day (her first is there).
    await send(
        client, who, type="conversation.assigned", at=at + 7300, agentEmail=AGENTS[1], phone=ann
    )
    bo = await agent_id(engine, who.id, AGENTS[1])
    found = await contact_sets(engine, who.id)
    assert found["daily_figures"] == {(d10, "INBOX", ana): {a, b}, (d10, "INBOX", bo): {a}}
    assert found["agent_hourly_figures"] == {(ana, h10, "INBOX"): {a, b}, (bo, h12, "INBOX"): {a}}

    # Tagged, then untagged: the tag's cells hold Ann, then nobody.
    with every_statement() as texts:
        await send(client, who, type="conversation.tagged", at=at + 7400, tag="VIP", phone=ann)
    if engine.dialect.name == "postgresql":  # four tables' sets: read and written back at once
        steps = [text.split(" ", 2)[1] for text in texts if text.startswith("WITH ")]
        assert steps.count("locked_0") == steps.count("written_0") == 1
        assert not [text for text in texts if text.startswith("SELECT tag_daily_figures")]
    else:  # moved inside one UPDATE per table, never read
        moved = [t.split(" ", 2)[1] for t in texts if "wareports_moved_contacts" in t]
        tagged = {cells.table.name for cells in CONVERSATION_CELLS if cells.tagged}
        assert sorted(moved) == sorted(tagged) and len(tagged) == 4
    vip = await tag_id(engine, who.id, "vip")
    found = await contact_sets(engine, who.id)
    assert found["tag_daily_figures"] == {(d10, vip, "INBOX"): {a}}
    assert found["tag_agent_daily_figures"] == {(bo, d10, vip, "INBOX"): {a}}
    assert found["tag_pair_daily_figures"] == {(vip, d10, vip, "INBOX"): {a}}
    assert found["tag_hourly_figures"] == {(vip, h12, "INBOX"): {a}}
    await send(client, who, type="conversation.untagged", at=at + 7500, tag="VIP", phone=ann)
    found = await contact_sets(engine, who.id)
    assert found["tag_daily_figures"] == found["tag_pair_daily_figures"] == {}

    # Her first conversation goes to Bo too (by id): now she has left Ana's cells.
    first = await first_conversation(engine, who.id, a)
    await send(
        client,
        who,
        type="conversation.assigned",
        at=at + 7600,
        agentEmail=AGENTS[1],
        conversationId=str(first),
        phone=None,
    )
    found = await contact_sets(engine, who.id)
    assert found["daily_figures"] == {(d10, "INBOX", ana): {b}, (d10, "INBOX", bo): {a}}
    assert found["agent_hourly_figures"] == {
        (ana, h10, "INBOX"): {b},
        (bo, h10, "INBOX"): {a},
        (bo, h12, "INBOX"): {a},
    }
    assert found["source_daily_figures"] == {(d10, "INBOX"): {a, b}}
    kept = await contact_sets(engine, who.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert await contact_sets(engine, who.id) == kept


@contextmanager
def every_statement() -> Iterator[list[str]]:
    """The texts of the statements every engine runs meanwhile (the writer's included)."""
    texts: list[str] = []

    def capture(*args: Any) -> None:
        texts.append(args[2])

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield texts
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


async def first_conversation(engine: AsyncEngine, account_id: int, contact: int) -> int:
    from models import Conversation

    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(Conversation.id)  # type: ignore[call-overload]
            .where(Conversation.account_id == account_id, Conversation.contact_id == contact)
            .order_by(Conversation.started_at)
        )
    assert found is not None
    return int(found)


async def test_clicks_and_attributions_count_on_the_local_day_of_the_click(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    who = await create_test_account(engine, "Clicks", ZONE)
    pnid = f"pnid-clicks-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    async with transaction(engine) as session:
        button = await create_button(session, who.id, pnid, "Pricing")
        # 23:30 in Paris on the 10th, then 00:30 on the 11th (UTC+1 in March).
        late = await record_click(
            session, button, click_details(None, {"utm_source": " "}), utc("2026-03-10 22:30")
        )
        details = click_details("https://shop.test/p?x=1", {"utm_campaign": "spring"})
        early = await record_click(session, button, details, utc("2026-03-10 23:30"))
    assert late.ref_code != early.ref_code
    # The contact writes with the second click's code: its conversation is attributed to it.
    text = f"Hello [ref {early.ref_code}]"
    payload = inbound("wamid.c1", ANA, utc("2026-03-10 23:40"), text=text, phone_number_id=pnid)
    assert (await post_webhook(client, payload)).status_code == 200

    d10, d11 = day("2026-03-10"), day("2026-03-11")
    pricing, page = maintenance.key_hash("Pricing"), maintenance.key_hash("https://shop.test/p")

    def cell(key: str | None, clicks: int, conversations: int) -> dict[str, Any]:
        return {"key": key, "clicks": clicks, "conversations": conversations}

    nothing = {(dimension, d10, ""): cell(None, 1, 0) for dimension in CLICK_DIMENSIONS[1:]} | {
        (dimension, d11, ""): cell(None, 1, 1) for dimension in CLICK_DIMENSIONS[1:]
    }
    expected = {
        **nothing,
        ("button", d10, pricing): cell("Pricing", 1, 0),
        ("button", d11, pricing): cell("Pricing", 1, 1),
        ("referrer", d11, page): cell("https://shop.test/p", 1, 1),
        ("utm_campaign", d11, maintenance.key_hash("spring")): cell("spring", 1, 1),
    }
    del expected[("referrer", d11, "")], expected[("utm_campaign", d11, "")]
    assert (await cells(engine, who.id))["click_daily_figures"] == expected
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert (await cells(engine, who.id))["click_daily_figures"] == expected
    body = await report(client, who, "widget", {"from": "2026-03-10", "to": "2026-03-11"})
    widget = body["widgetReport"]
    assert (widget["clicks"], widget["conversations"]) == (2, 1)
    assert widget["daily"] == [
        {"start": "2026-03-10", "clicks": 1, "conversations": 0},
        {"start": "2026-03-11", "clicks": 1, "conversations": 1},
    ]
    assert widget["byReferrer"] == [
        {"key": "https://shop.test/p", "clicks": 1, "conversations": 1},
        {"key": None, "clicks": 1, "conversations": 0},
    ]


async def test_delivery_statuses_move_the_funnel_of_counted_messages(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A status moves the delivery figures of a message already counted, in its conversation's
    cell on the day it was sent: delivered then failed, a status before its message (kept
    pending), a read that skips delivered then a late delivered (never backwards); then the
    conversation changes hands and takes its figures along."""
    who = await create_test_account(engine, "Funnel", "UTC")
    pnid = f"pnid-funnel-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)

    async def status(wamid: str, name: str, at: int, **extra: Any) -> None:
        payload = status_payload(wamid, name, at, phone_number_id=pnid, **extra)
        assert (await post_webhook(client, payload)).status_code == 200

    async def delivery() -> dict[str, int]:
        [cell] = (await cells(engine, who.id))["source_daily_figures"].values()
        names = ("outbound_messages", "delivered_messages", "read_messages", "failed_messages")
        return {name: cell[name] for name in names}

    t = utc("2026-03-10 10:00")
    payload = inbound("wamid.f0", ANA, t, phone_number_id=pnid)
    assert (await post_webhook(client, payload)).status_code == 200
    await send(client, who, type="message.sent", at=t + 60, messageId="o1", agentEmail=AGENTS[0])
    await status("o1", "delivered", t + 70)
    counts = {"outbound_messages": 1, "delivered_messages": 1}
    assert await delivery() == {**counts, "read_messages": 0, "failed_messages": 0}
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    await status("o1", "failed", t + 80, errors=errors)
    assert await delivery() == {
        "outbound_messages": 1,
        "delivered_messages": 0,
        "read_messages": 0,
        "failed_messages": 1,
    }
    await status("o2", "read", t + 100)  # before its message: pending, counted with it
    await send(client, who, type="message.sent", at=t + 90, messageId="o2", agentEmail=AGENTS[0])
    await send(client, who, type="message.sent", at=t + 120, messageId="o3", agentEmail=AGENTS[0])
    await status("o3", "sent", t + 121)
    await status("o3", "read", t + 130)
    await status("o3", "delivered", t + 125)  # late: a read message stays read
    funnel = {
        "outbound_messages": 3,
        "delivered_messages": 2,
        "read_messages": 2,
        "failed_messages": 1,
    }
    assert await delivery() == funnel
    await send(client, who, type="conversation.assigned", at=t + 200, agentEmail=AGENTS[1])
    bo = await agent_id(engine, who.id, AGENTS[1])
    [(key, cell)] = (await cells(engine, who.id))["daily_figures"].items()
    assert key[2] == bo and {name: cell[name] for name in funnel} == funnel
    kept = await aggregate_rows(engine, who.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert await aggregate_rows(engine, who.id) == kept
    flt = {"from": "2026-03-10", "to": "2026-03-10"}
    query = """query($f: ReportFilter!) { summaryReport(filter: $f) {
      totals { deliveredMessages readMessages failedMessages }
      failureReasons { code title messages } } }"""
    for zone in ("UTC", "Africa/Abidjan"):  # the aggregates, then the raw rows (UTC+0 too)
        body = await graphql(client, who, query, {"f": {**flt, "timezone": zone}})
        assert body["data"]["summaryReport"] == {
            "totals": {"deliveredMessages": 2, "readMessages": 2, "failedMessages": 1},
            "failureReasons": [{"code": 131026, "title": "Message undeliverable", "messages": 1}],
        }


async def tag_id(engine: AsyncEngine, account_id: int, name_key: str) -> int:
    from models import Tag

    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(Tag.id).where(Tag.account_id == account_id, Tag.name_key == name_key)  # type: ignore[arg-type]
        )
    assert found is not None
    return found


async def test_the_auto_close_job_moves_the_figures_of_what_it_closes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    who = await create_test_account(engine, "Idle", "UTC", auto_close_hours=1)
    pnid = f"pnid-idle-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    sent = NOW - 30 * 60
    payload = inbound("wamid.idle", ANA, sent, phone_number_id=pnid)
    assert (await post_webhook(client, payload)).status_code == 200
    today = (datetime.fromtimestamp(sent, ZoneInfo("UTC")).date() - date(1970, 1, 1)).days
    opened = figures(
        conversations=1,
        inbound_conversations=1,
        messages=1,
        inbound_messages=1,
        message_count_sum=1,
    )
    assert (await cells(engine, who.id))["daily_figures"] == {(today, "INBOUND", 0): opened}
    assert await close_due(engine, now=NOW + 2 * HOUR) == 1
    # Closed at its last message + 1 h: a duration of 3600 s, on the bound of its bucket.
    closed = {
        **opened,
        "closed_conversations": 1,
        "duration_sum": HOUR,
        "duration_business_sum": HOUR,  # no office hours: calendar time
        "duration_le_3600": 1,
    }
    assert (await cells(engine, who.id))["daily_figures"] == {(today, "INBOUND", 0): closed}


# --- the command line ----------------------------------------------------------------------------


def test_zone_change_and_rebuild_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WAREPORTS_DATABASE_URL", url)
    get_settings.cache_clear()
    run = CliRunner().invoke
    created = run(cli, ["account", "create", "--name", "Zoned"])
    assert created.exit_code == 0, created.output
    account_id = int(created.stdout.split('"id":')[1].split(",")[0])
    late = utc("2026-03-10 23:30")  # the 10th in UTC, the 11th in Paris (00:30 CET)

    async def ingest_and_forget() -> None:
        engine = create_engine(url)
        async with transaction(engine) as session:
            await ingest_one_message(session, account_id, late)
            # As after an upgrade: aggregates not built, ingestion leaves them alone.
            await session.execute(
                maintenance.STATE.delete().where(maintenance.STATE.c.account_id == account_id)
            )
        await engine.dispose()

    asyncio.run(ingest_and_forget())
    assert asyncio.run(daily_keys(url, account_id)) == [(day("2026-03-10"), "INBOUND", 0)]
    rebuilt = run(cli, ["rebuild-aggregates"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f'{{"account":{account_id},' in rebuilt.stdout
    moved = run(cli, ["account", "set-timezone", "--account", str(account_id), "--timezone", ZONE])
    assert moved.exit_code == 0, moved.output
    assert '"timezone":"Europe/Paris"' in moved.stdout
    assert asyncio.run(daily_keys(url, account_id)) == [(day("2026-03-11"), "INBOUND", 0)]
    wrong = run(
        cli, ["account", "set-timezone", "--account", str(account_id), "--timezone", "Mars/Base"]
    )
    assert wrong.exit_code == 2 and "unknown time zone" in wrong.stderr
    missing = run(cli, ["rebuild-aggregates", "--account", "999"])
    assert missing.exit_code == 2 and "no account 999" in missing.stderr
    get_settings.cache_clear()


async def ingest_one_message(session: Any, account_id: int, sent_at: int) -> None:
    from ingest import conversations
    from ingest.contacts import lock_contacts

    clock = await conversations.clock_of(session, account_id)
    contacts = await lock_contacts(session, account_id, {"+" + ANA}, create={"+" + ANA})
    message = conversations.NewMessage(contacts["+" + ANA], None, "wamid.cli", "contact", sent_at)
    await conversations.record_message(session, clock, message)


async def daily_keys(url: str, account_id: int) -> list[tuple[int, str, int]]:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        table = maintenance.DAILY
        rows = await session.execute(
            select(table.c.day, table.c.source, table.c.assignee_id).where(
                table.c.account_id == account_id, table.c.conversations > 0
            )
        )
        found = [tuple(row) for row in rows.all()]
    await engine.dispose()
    return found  # type: ignore[return-value]


async def test_report_aggregates_off_reads_raw_rows(
    client: httpx.AsyncClient, engine: AsyncEngine, database_url: str
) -> None:
    """WAREPORTS_REPORT_AGGREGATES=false: the same figures, every statement over the raw rows,
    through GraphQL and CSV."""
    who = await create_test_account(engine, "Switch", "UTC")
    pnid = f"pnid-switch-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    payload = inbound("wamid.s1", ANA, utc("2026-03-10 09:00"), phone_number_id=pnid)
    assert (await post_webhook(client, payload)).status_code == 200
    at = utc("2026-03-10 09:05")
    await send(client, who, type="message.sent", at=at, messageId="s2", agentEmail=AGENTS[0])
    flt = {"from": "2026-03-10", "to": "2026-03-11"}

    async def statements_and_report(app_client: httpx.AsyncClient, app_engine: Any) -> Any:
        with counting_statements(app_engine) as seen:
            body = {
                name: await report(app_client, who, name, flt) for name in ("summary", "agents")
            }
            # The CSV export reads its link's filter again: the switch applies there too.
            body["csv"] = await export_rows(app_client, who, "AGENTS", flt)
        # The daily figures, and what agents sent (sentMessages).
        aggregate_tables = ("daily_figures", "agent_daily_messages")
        used = any(table in statement for statement in seen for table in aggregate_tables)
        return used, body

    used, kept = await statements_and_report(client, engine)
    assert used
    assert kept["summary"]["summaryReport"]["totals"]["messages"] == 2
    assert kept["summary"]["summaryReport"]["totals"]["avgFirstResponseSeconds"] == 300.0
    assert kept["agents"]["agentReport"]["rows"][0]["sentMessages"] == 1
    raw_app = create_app(make_settings(database_url, report_aggregates=False))
    async with raw_app.router.lifespan_context(raw_app):
        transport = httpx.ASGITransport(app=raw_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
            used, through_rows = await statements_and_report(raw, raw_app.state.engine)
    assert not used
    assert through_rows == kept


async def test_a_rebuild_leaves_postgresql_fresh_statistics(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's concern here")
    from sqlalchemy import text

    who = await create_test_account(engine, "Analyzed", "UTC")
    await send(client, who, type="message.sent", at=utc("2026-03-10 09:00"), messageId="a1")

    async def reltuples(table: str) -> float:
        async with session_factory(engine)() as session:
            query = text("SELECT reltuples FROM pg_class WHERE relname = :name")
            return float((await session.execute(query, {"name": table})).scalar_one())

    assert await reltuples("source_daily_figures") == -1  # never analyzed: the planner guesses
    await maintenance.rebuild_aggregates_of(engine, who.id)
    assert await reltuples("source_daily_figures") >= 0
    assert await reltuples("click_daily_figures") >= 0


async def test_every_account_of_a_zone_shares_the_compiled_deltas(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The delta and status statements bind the account (compiling them takes about a third of
    a second): accounts of one zone share them, so a server with many accounts does not
    compile at each transaction once they outnumber the cache. Each account's figures are its
    own."""
    phone = CONTACTS[0]
    at = utc("2026-03-11 09:00")
    accounts_of_zone = []
    for n in range(3):
        who = await create_test_account(engine, f"Shared {n}", "UTC")
        pnid = f"pnid-shared-{n}-{NOW}"
        await add_channel(engine, who.id, phone_number_id=pnid)
        accounts_of_zone.append(who)
        payload = inbound(f"wamid.shared{n}", phone, at + n, phone_number_id=pnid)
        assert (await post_webhook(client, payload)).json()["messages"] == 1
        await send(
            client, who, type="message.sent", at=at + 60, messageId=f"s{n}", phone="+" + phone
        )
        if n == 0:
            deltas = maintenance._sync_statements.cache_info().currsize
            statuses = maintenance._status_statements.cache_info().currsize
        payload = status_payload(f"s{n}", "read", at + 120, phone_number_id=pnid)
        assert (await post_webhook(client, payload)).json()["statuses"] == 1
    assert maintenance._sync_statements.cache_info().currsize == deltas
    assert maintenance._status_statements.cache_info().currsize <= statuses + 1
    daily = maintenance.DAILY
    async with session_factory(engine)() as session:
        for who in accounts_of_zone:
            query = select(func.sum(daily.c.messages), func.sum(daily.c.read_messages)).where(
                daily.c.account_id == who.id
            )
            assert tuple((await session.execute(query)).one()) == (2, 1), who.name


async def test_the_server_compiles_the_ingestion_statements_of_its_zones_at_startup(
    database_url: str,
) -> None:
    """Compiling a zone's delta statements takes about a third of a second each, holding the
    event loop: a server compiles those of its accounts' zones in a thread as it starts, so
    that the first transactions of a zone (and the first tagging) compile nothing."""
    zone = "Asia/Kathmandu"  # +05:45, no other test's
    settings = make_settings(database_url)
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        who = await create_test_account(first.state.engine, "Warm", zone)
        await add_channel(first.state.engine, who.id, phone_number_id="pnid-warm")
    deltas = maintenance._sync_statements
    assert deltas.cache_info().currsize < deltas.cache_info().maxsize  # nothing pushed out
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        await asyncio.to_thread(second.state.warm_up.join)
        dialect = second.state.engine.dialect
        moment = int(time.time())
        periods = maintenance._cache_key(maintenance.zone_periods(zone, [(moment - 9, moment)]))
        misses = deltas.cache_info().misses
        warmed = [s for tagged in (False, True) for s in deltas(dialect.name, periods, tagged)]
        assert deltas.cache_info().misses == misses, "not compiled at startup"
        assert all(dialect.name in statement._pieces for statement in warmed)
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            payload = inbound("wamid.warm", ANA, moment - 60, phone_number_id="pnid-warm")
            assert (await post_webhook(client, payload)).json()["messages"] == 1
            await send(client, who, type="conversation.tagged", at=moment - 30, tag="Sales")
        assert deltas.cache_info().misses == misses


async def test_a_status_moves_the_funnel_as_a_new_server_s_first_transaction(
    database_url: str,
) -> None:
    """The status deltas need nothing a conversation sync leaves on the writer's connection:
    a status is the first thing a freshly started server stores."""
    settings = make_settings(database_url)
    at = utc("2026-03-11 09:00")
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        who = await create_test_account(first.state.engine, "Restarted", "UTC")
        await add_channel(first.state.engine, who.id, phone_number_id="pnid-restarted")
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await send(
                client, who, type="message.sent", at=at, messageId="r1", agentEmail=AGENTS[0]
            )
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            payload = status_payload("r1", "read", at + 60, phone_number_id="pnid-restarted")
            response = await post_webhook(client, payload)
            assert response.status_code == 200, response.text
            assert response.json()["statuses"] == 1
        daily = maintenance.DAILY
        query = select(func.sum(daily.c.read_messages)).where(daily.c.account_id == who.id)
        async with session_factory(second.state.engine)() as session:
            assert (await session.execute(query)).scalar() == 1


async def test_sqlite_keeps_the_aggregates_by_primary_key_not_by_the_account(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Without planner statistics, SQLite would answer `account_id = N AND id IN (...)` (or
    `account_id = N AND conversation_id = M`) by walking the account's whole index: each
    ingestion transaction would then cost as much as the account is large. Every statement
    ingestion runs must find conversations, their messages and tags by key, for one
    conversation as for a group transaction's many (an `IN` list of one and of several)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner without statistics")
    from sqlalchemy.engine import Engine

    who = await create_test_account(engine, "Planned", "UTC")
    grouped = [f"3362000{n:04d}" for n in range(12)]  # new contacts, folded in groups
    pnid = f"pnid-planned-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    seen: dict[str, Any] = {}

    def capture(*args: Any) -> None:
        _connection, _cursor, statement, parameters, _context, many = args
        if not many and statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")):
            seen.setdefault(statement, parameters)

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        for n, phone in enumerate(CONTACTS):
            at = utc("2026-03-10 09:00") + n
            payload = inbound(f"wamid.p{n}", phone, at, phone_number_id=pnid)
            assert (await post_webhook(client, payload)).json()["messages"] == 1
        at = utc("2026-03-10 09:05")
        await send(client, who, type="message.sent", at=at, messageId="p9", agentEmail=AGENTS[0])
        await send(client, who, type="conversation.tagged", at=at + 60, tag="Sales")
        await send(client, who, type="conversation.untagged", at=at + 90, tag="Sales")
        payload = status_payload("p9", "read", at + 120, phone_number_id=pnid)
        assert (await post_webhook(client, payload)).json()["statuses"] == 1
        # Then groups: new and known contacts' messages, statuses, a batch on several.
        writer = writer_of(app)
        async with writer.held():
            payloads = [
                inbound(f"wamid.g{n}", phone, at + 200 + n, phone_number_id=pnid)
                for n, phone in enumerate(grouped)
            ]
            payloads += [
                inbound(f"wamid.k{n}", phone, at + 300 + n, phone_number_id=pnid)
                for n, phone in enumerate(CONTACTS)
            ]
            payloads += [
                status_payload(f"p{n}", "delivered", at + 400, phone_number_id=pnid)
                for n in range(len(CONTACTS))
            ]
            posts = [asyncio.create_task(post_webhook(client, p)) for p in payloads]
            await wait_for_depth(writer, len(payloads))
        assert {answer.status_code for answer in await asyncio.gather(*posts)} == {200}
        batch = [
            {"id": f"g{n}{kind}", "type": kind, "phone": "+" + phone, "at": at + 500 + n, **extra}
            for n, phone in enumerate(CONTACTS)
            for kind, extra in (
                ("message.sent", {"messageId": f"gs{phone}", "agentEmail": AGENTS[1]}),
                ("conversation.tagged", {"tag": "Billing"}),
            )
        ]
        # Sent to the new contacts too: their statuses below fold as one long list (SQLite
        # planned a list of four message ids or more as a walk of the account's messages).
        batch += [
            {"id": f"gn{n}", "type": "message.sent", "phone": "+" + phone, "at": at + 550 + n}
            | {"messageId": f"gs{phone}", "agentEmail": AGENTS[2]}
            for n, phone in enumerate(grouped)
        ]
        assert (await post_events(client, who, batch)).status_code == 200
        async with writer.held():
            payloads = [
                status_payload(f"gs{phone}", "read", at + 600, phone_number_id=pnid)
                for phone in (*CONTACTS, *grouped)
            ]
            posts = [asyncio.create_task(post_webhook(client, p)) for p in payloads]
            await wait_for_depth(writer, len(payloads))
        answers = await asyncio.gather(*posts)
        assert [answer.json()["statuses"] for answer in answers] == [1] * len(payloads)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)

    sync = [s for s in seen if s.startswith("INSERT INTO daily_figures")]
    assert sync, "the aggregates were not kept: nothing to check"
    walks = []
    async with engine.connect() as connection:
        await connection.exec_driver_sql(maintenance.CREATE_DELTA)  # the writer's temporary table
        for statement, parameters in seen.items():
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            for row in plan:
                detail = row[-1]
                # The account's rows, or a range of them (`agent_id>?` for `IS NOT NULL`).
                walk = detail.startswith("SEARCH") and ACCOUNT_WALK.search(detail) is not None
                if walk or detail.startswith(("SCAN message", "SCAN conversation")):
                    if detail.startswith("SEARCH channel"):
                        continue  # (an account's few numbers)
                    if " VALUES " in statement and detail.split()[1] not in statement:
                        continue  # a foreign key check on insert, run only while one fails
                    walks.append((detail, " ".join(statement.split())[:1000]))
    assert walks == [], "\n".join(map(str, walks))


BOUNDS = (60, 300, 900, 1800, 3600, 14400, 28800, 86400, 259200)
FRT_SUFFIXES = (*(f"le_{bound}" for bound in BOUNDS), "gt_259200")


@pytest.mark.parametrize(
    ("low", "high", "columns"),
    [
        (61, 301, ["frt_le_300"]),
        (None, 61, ["frt_le_60"]),
        (None, None, [f"frt_{suffix}" for suffix in FRT_SUFFIXES]),
        (3601, None, [f"frt_{suffix}" for suffix in FRT_SUFFIXES[5:]]),
        (259201, None, ["frt_gt_259200"]),
        (301, 1801, ["frt_le_900", "frt_le_1800"]),
        (60, 301, None),  # 60 is in the bin up to 60
        (61, 300, None),  # 300 is in the bin up to 300
        (0, 61, None),  # from 0, not from the lowest value
        (301, 301, None),
    ],
)
def test_a_range_of_seconds_is_counted_from_the_bins_that_hold_it_exactly(
    low: int | None, high: int | None, columns: list[str] | None
) -> None:
    """[min, max) over integer seconds against bins (lower, upper]: a run of whole bins."""
    assert aggregates._binned(SecondsRange(low, high), "first_response_distribution") == columns


@pytest.mark.parametrize(
    ("agents", "tag_rows", "tag_filter", "table"),
    [
        (False, False, False, "source_daily_figures"),
        (True, False, False, "daily_figures"),
        (False, True, False, "tag_daily_figures"),
        (False, False, True, "tag_daily_figures"),
        (True, True, False, "tag_agent_daily_figures"),
        (True, False, True, "tag_agent_daily_figures"),
        (False, True, True, "tag_pair_daily_figures"),
        (True, True, True, None),  # no table splits by assignee and by pairs of tags
    ],
)
def test_the_smallest_table_whose_cells_answer_is_read(
    agents: bool, tag_rows: bool, tag_filter: bool, table: str | None
) -> None:
    chosen = next(
        (
            cells.table.name
            for cells in SMALLEST_FIRST
            if cells.answers(agents=agents, tag_rows=tag_rows, tag_filter=tag_filter)
        ),
        None,
    )
    assert chosen == table


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sets(
            st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 2, 2**64 - 1)), min_size=1
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_size_of_a_union_of_contact_sets(sets: list[set[int]]) -> None:
    """`union_size` reads sets of ids below 2**32 as 32-bit bitmaps and any other as 64-bit:
    the size of the union either way."""
    blobs = [BitMap64(contacts).serialize() for contacts in sets]
    assert aggregates.union_size(blobs) == len(set().union(*sets))
    low = [BitMap64({n % 2**32 for n in contacts}).serialize() for contacts in sets]
    assert aggregates.union_size(low) == len({n % 2**32 for s in sets for n in s})
