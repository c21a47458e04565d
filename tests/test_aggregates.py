"""Report aggregates kept at ingestion answer exactly what the raw rows answer.

Property: random inbox histories posted through the real ingestion paths (signed webhooks,
`POST /v1/events`, the auto-close job), with instants out of order and around a daylight-saving
change, leave every report (summary, agents, tags) identical for random filters whether the
aggregates answer (the account's zone) or the raw rows do (a zone with the same offsets under
another name), and leave the same aggregate rows as a rebuild from the raw rows.
Worked examples: the aggregate rows after a scripted history, figures written out by hand.
"""

import itertools
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest import aggregates as maintenance
from ingest.autoclose import close_due
from models.db import session_factory, transaction
from resolvers import aggregates
from resolvers.filters import Filter
from tests.conftest import TestAccount, create_test_account, graphql
from tests.ingest_support import add_channel, inbound, post_events, post_webhook

HOUR = 3600
ZONE = "Europe/Paris"
RAW_ZONE = "Europe/Brussels"  # the same offsets as Paris in these years: the raw path answers
NOW = int(time.time())
# Paris leaves summer time at 2026-10-25 01:00 UTC (03:00 CEST -> 02:00 CET): a 25-hour day.
DST_END = int(datetime(2026, 10, 25, 1, 0, tzinfo=ZoneInfo("UTC")).timestamp())
ANCHORS = (DST_END, NOW)
CONTACTS = ("33610000001", "33610000002", "33610000003")
AGENTS = ("ana@acme.test", "bo@acme.test", "cy@acme.test")
TAGS = ("Sales", "support", "Billing")
BOUNDED = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

METRICS = """conversations inboundConversations distinctContacts messages inboundMessages
  outboundMessages closedConversations avgDurationSeconds avgFirstResponseSeconds avgRating
  ratedConversations"""
REPORTS = {
    "summary": f"""query($f: ReportFilter!) {{ summaryReport(filter: $f) {{
      totals {{ {METRICS} }} daily {{ start metrics {{ {METRICS} }} }}
      weekly {{ start metrics {{ {METRICS} }} }} bySource {{ source metrics {{ {METRICS} }} }}
    }} }}""",
    "agents": f"""query($f: ReportFilter!) {{ agentReport(filter: $f) {{ rows {{
      agent {{ email }} sentMessages metrics {{ {METRICS} }}
      daily {{ start metrics {{ {METRICS} }} }} }} }} }}""",
    "tags": f"""query($f: ReportFilter!) {{ tagReport(filter: $f) {{ rows {{
      tag {{ name }} metrics {{ {METRICS} }} daily {{ start metrics {{ {METRICS} }} }} }} }} }}""",
}


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
STEP = st.one_of(
    st.builds(Step, st.just("inbound"), CONTACT, INSTANTS),
    st.builds(Step, st.just("sent"), CONTACT, INSTANTS, MAYBE_AGENT),
    st.builds(Step, st.just("started"), CONTACT, INSTANTS, AGENT, value=st.integers(0, 1)),
    st.builds(Step, st.just("assigned"), CONTACT, INSTANTS, MAYBE_AGENT),
    st.builds(Step, st.just("tagged"), CONTACT, INSTANTS, tag=st.integers(0, len(TAGS) - 1)),
    st.builds(Step, st.just("untagged"), CONTACT, INSTANTS, tag=st.integers(0, len(TAGS) - 1)),
    st.builds(Step, st.just("closed"), CONTACT, INSTANTS, MAYBE_AGENT),
    st.builds(Step, st.just("rated"), CONTACT, INSTANTS, value=st.integers(1, 5)),
    st.builds(Step, st.just("autoclose"), value=st.integers(0, 30)),
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


class History:
    """Posts steps through the ingestion paths of one account."""

    def __init__(self, client: httpx.AsyncClient, who: TestAccount, pnid: str) -> None:
        self.client, self.who, self.pnid = client, who, pnid
        self.serial = itertools.count()

    async def post(self, step: Step, engine: AsyncEngine) -> None:
        number = next(self.serial)
        wa_id = CONTACTS[step.contact]
        if step.kind == "inbound":
            payload = inbound(
                f"wamid.{self.pnid}.{number}", wa_id, step.at, phone_number_id=self.pnid
            )
            assert (await post_webhook(self.client, payload)).status_code == 200
            return
        if step.kind == "autoclose":
            await close_due(engine, now=NOW + step.value * HOUR)
            return
        event = {"id": f"e{number}", "type": f"conversation.{step.kind}", "at": step.at}
        event["phone"] = "+" + wa_id
        agent = None if step.agent is None else AGENTS[step.agent]
        if step.kind == "sent":
            event.update(type="message.sent", messageId=f"wamid.{self.pnid}.{number}")
        elif step.kind == "started":
            event["source"] = ("FLOW", "INBOX")[step.value]
            agent = agent if step.value == 1 else None
        elif step.kind in ("tagged", "untagged"):
            event["tag"] = TAGS[step.tag]
        elif step.kind == "rated":
            event["rating"] = step.value
        if agent is not None or step.kind == "assigned":
            event["agentEmail"] = agent
        response = await post_events(self.client, self.who, [event])
        # A conversation event for a contact without conversation, or a close before the start,
        # is refused as a whole (422): nothing stored, the history goes on.
        assert response.status_code in (200, 422), response.text


_accounts = itertools.count(1)


async def new_account(engine: AsyncEngine) -> tuple[TestAccount, str]:
    number = next(_accounts)
    who = await create_test_account(engine, f"Prop {number}", ZONE, auto_close_hours=3)
    pnid = f"pnid-{number}-{NOW}"
    await add_channel(engine, who.id, phone_number_id=pnid)
    return who, pnid


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
        assert (
            await aggregates.table_for(session, who.id, raw, by_tag=False, by_assignee=False)
            is None
        )
    for name in REPORTS:
        through_aggregates = await report(client, who, name, flt)
        through_rows = await report(client, who, name, {**flt, "timezone": RAW_ZONE})
        assert through_aggregates == through_rows, (name, flt)


FIGURE_TABLES = (
    *(aggregate.table for aggregate in maintenance.AGGREGATES),
    maintenance.AGENT_MESSAGES,
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
            found[table.name] = [tuple(row) for row in rows if not _all_zero(table, row)]
    return found


def _all_zero(table: Table, row: Any) -> bool:
    if table not in FIGURE_TABLES:
        return False
    keys = {column.name for column in table.primary_key.columns}
    return all(value == 0 for name, value in row._mapping.items() if name not in keys)


# --- the property ------------------------------------------------------------------------------


@BOUNDED
@given(
    steps=st.lists(STEP, min_size=1, max_size=30),
    filters=st.lists(report_filters(), min_size=1, max_size=3),
)
async def test_aggregates_answer_what_raw_rows_answer(
    client: httpx.AsyncClient, engine: AsyncEngine, steps: list[Step], filters: list[Any]
) -> None:
    who, pnid = await new_account(engine)
    history = History(client, who, pnid)
    for step in steps:
        await history.post(step, engine)
    for flt in filters:
        await assert_paths_agree(client, engine, who, flt)
    kept = await aggregate_rows(engine, who.id)
    async with transaction(engine) as session:
        await maintenance.rebuild_aggregates(session, who.id)
    assert await aggregate_rows(engine, who.id) == kept
