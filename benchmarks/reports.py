"""`wareports bench`: a large generated account, each report timed through HTTP + GraphQL and
through its resolver alone, details pages and a year of CSV export; prints a table.

The HTTP figures go through the whole stack of a request (`create_app`: middleware, auth, rate
limit, query limits, Strawberry, the resolvers, JSON) over `httpx.ASGITransport`, in this process:
no socket and no uvicorn, so the ratio HTTP / SQL is the cost of our own layers. The SQL figures
call the same `resolvers` function with a session, computing the same parts. The CSV export runs
the real server under uvicorn in a child process (`benchmarks.export_memory`) to measure its
resident memory apart from the benchmark's.
"""

import asyncio
import math
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.utils.str_converters import to_camel_case

from api import accounts
from api.app import create_app, tune_collector
from ingest import demo
from ingest.aggregates import rebuild_aggregates_of
from models import Agent, Conversation, ConversationTag, Tag
from models.db import create_engine, is_sqlite, session_factory, transaction
from models.metrics import METRICS, Kind
from models.migrate import upgrade_to_head
from models.settings import Settings
from resolvers import details, entities
from resolvers.agents import AgentPart, agent_report
from resolvers.aggregates import aggregate_zone
from resolvers.filters import Filter, parse_filter
from resolvers.metrics import BOTH_HALVES, Half
from resolvers.summary import SummaryPart, summary_report
from resolvers.tags import TagPart, tag_report
from resolvers.widget import widget_report

ACCOUNT_NAME = "Benchmark"
ZONE = "Europe/Paris"
# A fixed year (the one benchmarks/export_memory.py exports), so that a reused database and a
# fresh one hold the same rows and answer the same figures.
END = int(datetime(2026, 11, 1, tzinfo=ZoneInfo(ZONE)).timestamp())
LAST_DAY = date(2026, 10, 31)
RANGES = (30, 90, 365)
AGENTS = 50
CONVERSATION_TAGS = tuple(f"topic-{number:02d}" for number in range(1, 31))
CONTACT_TAGS = tuple(f"segment-{number:02d}" for number in range(1, 21))
MESSAGES_PER_CONVERSATION = (7, 13)  # the dialogue's target length: about 8 messages on average
CLICKS_PER_CONVERSATION = 0.3


def metrics_fragment(distinct_contacts: bool, percentiles: bool = True) -> str:
    """Every metric of `models.metrics`; the distinct counts and the percentiles only when asked
    for (Options), as the resolver-alone timings then leave out Half.CONTACTS or
    Half.PERCENTILES."""
    left_out = {Kind.DISTINCT} if not distinct_contacts else set()
    if not percentiles:
        left_out.add(Kind.PERCENTILE)
    fields = [
        to_camel_case(m.name)
        + ("" if m.bins is None else f" {{ {to_camel_case(m.bins.key)} conversations }}")
        for m in METRICS
        if m.kind not in left_out
    ]
    return "fragment M on Metrics { " + " ".join(fields) + " }"


QUERIES = {
    "summary": """query($f: ReportFilter!) { summaryReport(filter: $f) { totals { ...M }
      daily { start metrics { ...M } } weekly { start metrics { ...M } }
      bySource { source metrics { ...M } } } }""",
    "heatmap": """query($f: ReportFilter!) { summaryReport(filter: $f) {
      heatmap { weekday hour metrics { ...M } } } }""",
    "agents": """query($f: ReportFilter!) { agentReport(filter: $f) {
      rows { agent { id email name } metrics { ...M } sentMessages } } }""",
    "tags": """query($f: ReportFilter!) { tagReport(filter: $f) {
      rows { tag { id name } metrics { ...M } } } }""",
    "widget": """query($f: ReportFilter!) { widgetReport(filter: $f) { clicks conversations
      daily { start clicks conversations } byButton { key clicks conversations }
      byReferrer { key clicks conversations } byUtmCampaign { key clicks conversations }
      byUtmMedium { key clicks conversations } byUtmSource { key clicks conversations }
      byUtmTerm { key clicks conversations } } }""",
}
DETAILS = """query($f: ReportFilter!, $first: Int) {
  conversationDetails(filter: $f, first: $first) { totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id startedAt closedAt status direction source messageCount
    durationSeconds firstResponseSeconds rating
    contact { id phone name tags { id name } } agent { id email name } tags { id name } } } } }"""


@dataclass(frozen=True)
class Target:
    """A report's median budget, in milliseconds, by range length (days)."""

    by_days: dict[int, float]

    def budget(self, days: int) -> float | None:
        return self.by_days.get(days)


REPORT_TARGET = Target({90: 100.0, 365: 250.0})
# What QUERIES["summary"] selects, which its resolver-alone timing computes (and nothing else: the
# pricing rows, the heatmap and the failure reasons read the raw messages).
SUMMARY_QUERY_PARTS = frozenset(
    {SummaryPart.TOTALS, SummaryPart.DAILY, SummaryPart.WEEKLY, SummaryPart.BY_SOURCE}
)
HEATMAP_TARGET = Target({90: 250.0, 365: 1000.0})
WIDGET_TARGET = Target({365: 250.0})  # with any filter (issue 15)
DRILL_DOWN_REPORT_TARGET = Target({90: 1000.0})
DRILL_DOWN_DETAILS_TARGET = 50.0  # the first page of 50
TAG_FILTER_TARGET = Target({365: 1000.0})
DETAILS_TARGETS = {50: 20.0, 500: 80.0}
OVERHEAD_TARGET = 1.20


@dataclass(frozen=True)
class Prepared:
    account_id: int
    token: str
    conversations: int
    messages: int
    agent_email: str
    tag_name: str
    generated_seconds: float | None  # None: reused


@dataclass
class Timing:
    """One line of the table: the wall times of HTTP + GraphQL and of the resolver alone."""

    report: str
    days: int
    filter_name: str
    http: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    budget_ms: float | None = None

    @property
    def ratio(self) -> float:
        return median(self.http) / median(self.sql) if self.sql else math.nan

    @property
    def met(self) -> bool:
        within = self.budget_ms is None or median(self.http) * 1000 <= self.budget_ms
        return within and (not self.sql or self.ratio <= OVERHEAD_TARGET)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (the maximum for fewer than 20 runs)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# --- the account -----------------------------------------------------------------------------


async def prepare(url: str, conversations: int, days: int, seed: int, reuse: bool) -> Prepared:
    """The benchmark account (reused when it holds `conversations` conversations and `reuse`),
    a token that reads and exports reports, and the agent and tag the filters name."""
    engine = create_engine(url)
    try:
        found = await demo.accounts_named(engine, ACCOUNT_NAME)
        count = await _count_conversations(engine, found[0]) if found else -1
        generated = None
        if reuse and count == conversations:
            account_id = found[0]
            print(f"reusing account {account_id}: {count:,} conversations", flush=True)
            await _rebuild_if_needed(engine, account_id)
        else:
            for stale in found:
                await demo.delete_account(engine, stale)
            account_id, generated = await _generate(url, engine, conversations, days, seed)
        async with transaction(engine) as session:
            _row, token = await accounts.create_token(
                session, account_id, ["reports:read", "reports:export"], name="bench"
            )
            agent_email, tag_name = await _busiest(session, account_id)
        messages = await _count_messages(engine, account_id)
        return Prepared(
            account_id,
            token,
            await _count_conversations(engine, account_id),
            messages,
            agent_email,
            tag_name,
            generated,
        )
    finally:
        await engine.dispose()


async def _generate(
    url: str, engine: AsyncEngine, conversations: int, days: int, seed: int
) -> tuple[int, float]:
    async with transaction(engine) as session:
        account = await accounts.create_account(session, ACCOUNT_NAME, ZONE)
        assert account.id is not None
    print(
        f"generating {conversations:,} conversations over {days} days "
        f"({AGENTS} agents, {len(CONVERSATION_TAGS)} conversation tags, "
        f"{len(CONTACT_TAGS)} contact tags, {round(CLICKS_PER_CONVERSATION * conversations):,} "
        "clicks) ...",
        flush=True,
    )
    loader = _bulk_engine(url)
    try:
        result = await demo.generate(
            loader,
            account.id,
            conversations=conversations,
            days=days,
            seed=seed,
            agents=AGENTS,
            conversation_tags=CONVERSATION_TAGS,
            contact_tags=CONTACT_TAGS,
            clicks=round(CLICKS_PER_CONVERSATION * conversations),
            end=END,
            messages=MESSAGES_PER_CONVERSATION,
            chunk_size=5_000,
        )
    finally:
        await loader.dispose()
    print(
        f"  {result.conversations:,} conversations, {result.messages:,} messages, "
        f"{result.contacts:,} contacts, {result.clicks:,} clicks in {result.seconds:.0f} s "
        "(report aggregates rebuilt included)",
        flush=True,
    )
    return account.id, result.seconds


async def _rebuild_if_needed(engine: AsyncEngine, account_id: int) -> None:
    """After a migration that dropped the built state, the aggregates are rebuilt first."""
    async with session_factory(engine)() as session:
        built = await aggregate_zone(session, account_id)
    if built is None:
        began = time.perf_counter()
        await rebuild_aggregates_of(engine, account_id)
        print(f"  report aggregates rebuilt in {time.perf_counter() - began:.0f} s", flush=True)


def _bulk_engine(url: str) -> AsyncEngine:
    """The engine of the bulk load: on SQLite without fsync and with a large page cache (a
    crash during the load loses only the benchmark's own data, which the next run rebuilds)."""
    engine = create_engine(url)
    if is_sqlite(url):

        def bulk_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-262144")
            cursor.close()

        event.listen(engine.sync_engine, "connect", bulk_pragmas)
    return engine


async def _busiest(session: AsyncSession, account_id: int) -> tuple[str, str]:
    """The agent with the most conversations and the most used conversation tag."""
    agent = await session.scalar(
        select(Agent.email)
        .join(
            Conversation,
            (col(Conversation.account_id) == col(Agent.account_id))
            & (col(Conversation.assignee_id) == col(Agent.id)),
        )
        .where(col(Agent.account_id) == account_id)
        .group_by(col(Agent.id), col(Agent.email))
        .order_by(func.count().desc())
        .limit(1)
    )
    tag = await session.scalar(
        select(Tag.name)
        .join(
            ConversationTag,
            (col(ConversationTag.account_id) == col(Tag.account_id))
            & (col(ConversationTag.tag_id) == col(Tag.id)),
        )
        .where(col(Tag.account_id) == account_id)
        .group_by(col(Tag.id), col(Tag.name))
        .order_by(func.count().desc())
        .limit(1)
    )
    return agent or "nobody@example.test", tag or "none"


async def _count_conversations(engine: AsyncEngine, account_id: int) -> int:
    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(func.count()).where(col(Conversation.account_id) == account_id)
        )
        return int(found or 0)


async def _count_messages(engine: AsyncEngine, account_id: int) -> int:
    from models import Message

    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(func.count()).where(col(Message.account_id) == account_id)
        )
        return int(found or 0)


# --- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    report: str
    days: int
    filter_name: str
    variables: dict[str, Any]

    def filter(self, zone: str, use_aggregates: bool = True, max_range_days: int = 366) -> Filter:
        raw = self.variables["f"]
        return parse_filter(
            from_=date.fromisoformat(raw["from"]),
            to=date.fromisoformat(raw["to"]),
            timezone=raw.get("timezone"),
            contact_tags=raw.get("contactTags"),
            conversation_tags=raw.get("conversationTags"),
            agent_emails=raw.get("agentEmails"),
            sources=raw.get("sources"),
            weekdays=raw.get("weekdays"),
            hours=raw.get("hours"),
            first_response_seconds=_bounds(raw.get("firstResponseSeconds")),
            duration_seconds=_bounds(raw.get("durationSeconds")),
            ratings=raw.get("ratings"),
            statuses=raw.get("statuses"),
            answered=raw.get("answered"),
            account_timezone=zone,
            max_range_days=max_range_days,
            use_aggregates=use_aggregates,
        )


def _bounds(seconds: dict[str, int | None] | None) -> tuple[int | None, int | None] | None:
    return None if seconds is None else (seconds.get("min"), seconds.get("max"))


# Drill-down filters (issue 17): a heatmap cell's hours, a first-response bucket, the unanswered,
# the closed conversations rated 5. Timed on the details' first page and on the summary.
DRILL_DOWNS: dict[str, dict[str, Any]] = {
    "hours": {"weekdays": [1, 2, 3, 4, 5], "hours": [9, 10]},
    "frt": {"firstResponseSeconds": {"min": 61, "max": 301}},
    "noreply": {"answered": False},
    "rated5": {"ratings": [5], "statuses": ["CLOSED"]},
}
DRILL_DOWN_SUMMARY = "hours"  # the one timed on the summary (raw rows)


def cases(prepared: Prepared, reports: tuple[str, ...]) -> list[Case]:
    filters: dict[str, dict[str, Any]] = {
        "none": {},
        "agent": {"agentEmails": [prepared.agent_email]},
        "source": {"sources": ["INBOUND"]},
        "tag": {"conversationTags": [prepared.tag_name]},
    }
    found = []
    for report in reports:
        for days in RANGES:
            first = LAST_DAY - timedelta(days=days - 1)
            for name, lists in filters.items():
                flt = {"from": first.isoformat(), "to": LAST_DAY.isoformat(), **lists}
                found.append(Case(report, days, name, {"f": flt}))
            if report == "summary":
                lists = DRILL_DOWNS[DRILL_DOWN_SUMMARY]
                flt = {"from": first.isoformat(), "to": LAST_DAY.isoformat(), **lists}
                found.append(Case(report, days, DRILL_DOWN_SUMMARY, {"f": flt}))
    return found


def budget(case: Case) -> float | None:
    if case.report == "widget":
        return WIDGET_TARGET.budget(case.days)
    if case.report == "heatmap":
        return HEATMAP_TARGET.budget(case.days)
    if case.filter_name in DRILL_DOWNS:
        return DRILL_DOWN_REPORT_TARGET.budget(case.days)
    if case.filter_name == "tag":
        return TAG_FILTER_TARGET.budget(case.days)
    return REPORT_TARGET.budget(case.days)


async def resolve(
    session: AsyncSession, account_id: int, case: Case, flt: Filter, halves: frozenset[Half]
) -> None:
    """The report's resolver alone, computing what the benchmark's query selects."""
    if case.report == "summary":
        await summary_report(session, account_id, flt, parts=SUMMARY_QUERY_PARTS, halves=halves)
    elif case.report == "heatmap":
        heatmap = frozenset({SummaryPart.HEATMAP})
        await summary_report(session, account_id, flt, parts=heatmap, halves=halves)
    elif case.report == "agents":
        parts = frozenset({AgentPart.METRICS, AgentPart.SENT_MESSAGES})
        await agent_report(session, account_id, flt, parts=parts, halves=halves)
    elif case.report == "tags":
        await tag_report(
            session, account_id, flt, parts=frozenset({TagPart.METRICS}), halves=halves
        )
    else:
        await widget_report(session, account_id, flt)


# --- measuring -------------------------------------------------------------------------------


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await work()
    return time.perf_counter() - began


async def post(client: httpx.AsyncClient, token: str, query: str, variables: Any) -> None:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SystemExit(f"the benchmark query failed: {response.status_code} {body}")


async def measure_reports(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    prepared: Prepared,
    chosen: list[Case],
    repeat: int,
    warmup: bool = True,
    distinct_contacts: bool = True,
    use_aggregates: bool = True,
    percentiles: bool = True,
) -> list[Timing]:
    timings = []
    fragment = metrics_fragment(distinct_contacts, percentiles)
    halves = BOTH_HALVES - {
        half
        for half, wanted in ((Half.CONTACTS, distinct_contacts), (Half.PERCENTILES, percentiles))
        if not wanted
    }
    # A document may not define a fragment it does not use (the widget report has no Metrics).
    query_of = {
        name: f"{text}\n{fragment}" if "...M" in text else text for name, text in QUERIES.items()
    }
    for case in chosen:
        flt = case.filter(ZONE, use_aggregates)
        query = query_of[case.report]

        async def over_http(query: str = query, case: Case = case) -> None:
            await post(client, prepared.token, query, case.variables)

        async def alone(case: Case = case, flt: Filter = flt) -> None:
            async with session_factory(engine)() as session:
                await resolve(session, prepared.account_id, case, flt, halves)

        if warmup:  # caches, plans, the page cache
            await over_http()
            await alone()
        timing = Timing(case.report, case.days, case.filter_name, budget_ms=budget(case))
        for _ in range(repeat):
            timing.http.append(await timed(over_http))
            timing.sql.append(await timed(alone))
        timings.append(timing)
        print(format_row(timing), flush=True)
    return timings


async def measure_details(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    prepared: Prepared,
    repeat: int,
    warmup: bool = True,
    use_aggregates: bool = True,
) -> list[Timing]:
    timings = []
    first = LAST_DAY - timedelta(days=364)
    variables = {"f": {"from": first.isoformat(), "to": LAST_DAY.isoformat()}}
    flt = Case("details", 365, "none", variables).filter(ZONE, use_aggregates)
    for size in DETAILS_TARGETS:

        async def over_http(size: int = size) -> None:
            await post(client, prepared.token, DETAILS, {**variables, "first": size})

        async def alone(size: int = size) -> None:
            async with session_factory(engine)() as session:
                await details_alone(session, prepared.account_id, flt, size)

        if warmup:
            await over_http()
            await alone()
        timing = Timing(f"details {size}", 365, "none", budget_ms=DETAILS_TARGETS[size])
        for _ in range(repeat):
            timing.http.append(await timed(over_http))
            timing.sql.append(await timed(alone))
        timings.append(timing)
        print(format_row(timing), flush=True)
    for days in (90, 365):
        for name, lists in DRILL_DOWNS.items():
            start = LAST_DAY - timedelta(days=days - 1)
            drill = {"f": {"from": start.isoformat(), "to": LAST_DAY.isoformat(), **lists}}
            drill_filter = Case("details", days, name, drill).filter(ZONE, use_aggregates)

            async def drill_http(drill: dict[str, Any] = drill) -> None:
                await post(client, prepared.token, DETAILS, {**drill, "first": 50})

            async def drill_alone(drill_filter: Filter = drill_filter) -> None:
                async with session_factory(engine)() as session:
                    await details_alone(session, prepared.account_id, drill_filter, 50)

            if warmup:
                await drill_http()
                await drill_alone()
            timing = Timing("details 50", days, name, budget_ms=DRILL_DOWN_DETAILS_TARGET)
            for _ in range(repeat):
                timing.http.append(await timed(drill_http))
                timing.sql.append(await timed(drill_alone))
            timings.append(timing)
            print(format_row(timing), flush=True)
    return timings


async def details_alone(session: AsyncSession, account_id: int, flt: Filter, size: int) -> None:
    """The statements of a details page: the page, its count and the nested batch look-ups."""
    from models import ContactTag

    page = await details.conversation_details(session, account_id, flt, details.Page(size))
    await details.count_conversations(session, account_id, flt)
    nodes = [edge.node for edge in page.edges]
    contact_ids = list({node.contact_id for node in nodes})
    agent_ids = list({node.assignee_id for node in nodes if node.assignee_id is not None})
    await entities.contacts_by_id(session, account_id, contact_ids)
    await entities.agents_by_id(session, account_id, agent_ids)
    await entities.tags_by_owner(session, account_id, ContactTag, "contact_id", contact_ids)
    await entities.tags_by_owner(
        session, account_id, ConversationTag, "conversation_id", [node.id for node in nodes]
    )


# --- the table -------------------------------------------------------------------------------

HEADER = (
    f"{'report':<12} {'days':>4} {'filter':<7} {'HTTP med':>9} {'HTTP p95':>9} "
    f"{'SQL med':>8} {'SQL p95':>8} {'ratio':>6} {'target':>7}  ok"
)


def format_row(timing: Timing) -> str:
    target = "-" if timing.budget_ms is None else f"{timing.budget_ms:.0f}"
    return (
        f"{timing.report:<12} {timing.days:>4} {timing.filter_name:<7} "
        f"{1000 * median(timing.http):>9.1f} {1000 * p95(timing.http):>9.1f} "
        f"{1000 * median(timing.sql):>8.1f} {1000 * p95(timing.sql):>8.1f} "
        f"{timing.ratio:>6.2f} {target:>7}  {'yes' if timing.met else 'NO'}"
    )


def verdicts(timings: list[Timing]) -> list[str]:
    """One line per case with a budget: its HTTP median against it (the table's `ok` also asks
    our layers' share, HTTP / SQL, to stay within OVERHEAD_TARGET)."""
    lines = []
    for t in timings:
        if t.budget_ms is None:
            continue
        took = 1000 * median(t.http)
        verdict = "met" if took <= t.budget_ms else "MISSED"
        lines.append(
            f"target {t.report} {t.days} days {t.filter_name} <= {t.budget_ms:.0f} ms: "
            f"{verdict} ({took:.1f} ms)"
        )
    return lines


def markdown(timings: list[Timing]) -> str:
    """The table as Markdown, for the README and the issue note (milliseconds)."""
    lines = [
        "| report | days | filter | HTTP median | HTTP p95 | SQL median | SQL p95 | HTTP/SQL "
        "| target | met |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for t in timings:
        target = "" if t.budget_ms is None else f"{t.budget_ms:.0f}"
        lines.append(
            f"| {t.report} | {t.days} | {t.filter_name} | {1000 * median(t.http):.1f} "
            f"| {1000 * p95(t.http):.1f} | {1000 * median(t.sql):.1f} | {1000 * p95(t.sql):.1f} "
            f"| {t.ratio:.2f} | {target} | {'yes' if t.met else 'no'} |"
        )
    return "\n".join(lines)


# --- the CSV export --------------------------------------------------------------------------


def export_csv(url: str, prepared: Prepared) -> bool:
    """A year of details exported through uvicorn (`benchmarks.export_memory` measures rows/s
    and the server's peak RSS)."""
    from benchmarks import export_memory as module  # psutil: imported only here

    port = module.free_port()
    server = module.start_server(url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(module.wait_ready(base, server))
        return bool(
            asyncio.run(module.measure(base, prepared.token, server.pid, prepared.conversations))
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- the command ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    database_url: str
    conversations: int = 1_000_000
    days: int = 365
    seed: int = 1
    repeat: int = 7
    warmup: bool = True
    distinct_contacts: bool = True  # whether the report queries select Metrics.distinctContacts
    percentiles: bool = True  # whether they select the percentiles (medians, p90)
    reuse: bool = True
    aggregates: bool = True  # False: every report reads the raw rows (the "before" figures)
    reports: tuple[str, ...] = ("summary", "heatmap", "agents", "tags", "widget")
    details: bool = True
    export: bool = True
    markdown: bool = False


def default_url() -> str:
    path = Path("bench-data") / "bench.db"
    path.parent.mkdir(exist_ok=True)
    return f"sqlite+aiosqlite:///{path.resolve()}"


def run(options: Options) -> bool:
    """Prepare the account, time every case, print the table; True when every target is met."""
    url = options.database_url
    upgrade_to_head(url)
    prepared = asyncio.run(
        prepare(url, options.conversations, options.days, options.seed, options.reuse)
    )
    print(
        f"engine {url.split(':')[0]}, account {prepared.account_id}: "
        f"{prepared.conversations:,} conversations, {prepared.messages:,} messages; "
        f"agent filter {prepared.agent_email}, tag filter {prepared.tag_name}; "
        f"{options.repeat} runs per case{' after a warm-up' if options.warmup else ''}; "
        f"Metrics {'with' if options.distinct_contacts else 'WITHOUT'} distinctContacts, "
        f"{'with' if options.percentiles else 'WITHOUT'} percentiles; "
        f"{'aggregates where they answer' if options.aggregates else 'raw rows only'}; "
        "milliseconds",
        flush=True,
    )
    print(HEADER, flush=True)
    timings = asyncio.run(_measure(url, prepared, options))
    csv_met = export_csv(url, prepared) if options.export else None
    if options.markdown:
        print()
        print(markdown(timings))
    print()
    for line in verdicts(timings):
        print(line)
    met = all(timing.met for timing in timings) and csv_met is not False
    print("every target met" if met else "TARGETS MISSED (lines marked NO above)")
    return met


async def _measure(url: str, prepared: Prepared, options: Options) -> list[Timing]:
    settings = Settings(
        database_url=url,
        secret_key=secrets.token_urlsafe(32),
        rate_limit="1000000/minute",
        autoclose_interval_seconds=86_400,
        log_level="WARNING",
        report_aggregates=options.aggregates,
    )
    app = create_app(settings)
    tune_collector()  # as `wareports serve` runs it
    engine = create_engine(url)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                chosen = cases(prepared, options.reports)
                timings = await measure_reports(
                    client,
                    engine,
                    prepared,
                    chosen,
                    options.repeat,
                    options.warmup,
                    options.distinct_contacts,
                    options.aggregates,
                    options.percentiles,
                )
                if options.details:
                    timings += await measure_details(
                        client, engine, prepared, options.repeat, options.warmup, options.aggregates
                    )
        return timings
    finally:
        await engine.dispose()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as `wareports bench`")
