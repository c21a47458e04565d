"""CSV export: the mutation, the signed link (tampered, expired, another account), each report
kind's columns and values against the GraphQL answer, formula injection, streaming by pages."""

import asyncio
import base64
import csv
import io
import json
import zlib
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from starlette.applications import Starlette

import resolvers.export
from api.app import create_app
from models import Account, ApiToken, Conversation, ConversationTag
from models.db import now, session_factory, transaction
from models.settings import Settings
from resolvers import export_details
from resolvers.entities import CONVERSATION_COLUMNS, ConversationRow, conversation_row
from resolvers.export_details import InstantFormat
from resolvers.export_links import ExportLink, sign_link
from resolvers.filters import parse_filter
from tests.conftest import (
    SECRET_KEY,
    TestAccount,
    counting_statements,
    create_test_account,
    graphql,
    make_settings,
)
from tests.factories import at, building, inbound, priced, reply, with_status

PARIS = "Europe/Paris"
MARCH = {"from": "2026-03-27", "to": "2026-03-31", "timezone": PARIS}
RE_ENGAGEMENT = (131047, "Re-engagement message")

EXPORT = """
mutation Export($report: ReportKind!, $filter: ReportFilter!) {
  exportReportCsv(report: $report, filter: $filter) { url expiresAt filename }
}"""

METRICS = """{ conversations inboundConversations distinctContacts messages inboundMessages
  outboundMessages closedConversations avgDurationSeconds avgFirstResponseSeconds avgRating
  ratedConversations avgMessagesPerConversation medianFirstResponseSeconds p90FirstResponseSeconds
  medianDurationSeconds p90DurationSeconds csatPercent deliveredMessages readMessages failedMessages
  firstResponseDistribution { upToSeconds conversations }
  durationDistribution { upToSeconds conversations }
  ratingDistribution { rating conversations }
  avgFirstResponseBusinessSeconds medianFirstResponseBusinessSeconds avgDurationBusinessSeconds
  startedOutsideOfficeHours slaFirstResponseMet slaFirstResponseBreached slaResolutionMet
  slaResolutionBreached slaHitPercent windowMissedConversations }"""
METRIC_FIELDS = [
    "conversations",
    "inboundConversations",
    "distinctContacts",
    "messages",
    "inboundMessages",
    "outboundMessages",
    "closedConversations",
    "avgDurationSeconds",
    "avgFirstResponseSeconds",
    "avgRating",
    "ratedConversations",
    "avgMessagesPerConversation",
    "medianFirstResponseSeconds",
    "p90FirstResponseSeconds",
    "medianDurationSeconds",
    "p90DurationSeconds",
    "csatPercent",
    "deliveredMessages",
    "readMessages",
    "failedMessages",
    "firstResponseDistribution",
    "durationDistribution",
    "ratingDistribution",
    "avgFirstResponseBusinessSeconds",
    "medianFirstResponseBusinessSeconds",
    "avgDurationBusinessSeconds",
    "startedOutsideOfficeHours",
    "slaFirstResponseMet",
    "slaFirstResponseBreached",
    "slaResolutionMet",
    "slaResolutionBreached",
    "slaHitPercent",
    "windowMissedConversations",
]
# The documented header rows, written out (README "CSV export").
METRIC_HEADER = [
    "conversations",
    "inbound_conversations",
    "distinct_contacts",
    "messages",
    "inbound_messages",
    "outbound_messages",
    "closed_conversations",
    "avg_duration_seconds",
    "avg_first_response_seconds",
    "avg_rating",
    "rated_conversations",
    "avg_messages_per_conversation",
    "median_first_response_seconds",
    "p90_first_response_seconds",
    "median_duration_seconds",
    "p90_duration_seconds",
    "csat_percent",
    "delivered_messages",
    "read_messages",
    "failed_messages",
    "frt_le_60",
    "frt_le_300",
    "frt_le_900",
    "frt_le_1800",
    "frt_le_3600",
    "frt_le_14400",
    "frt_le_28800",
    "frt_le_86400",
    "frt_le_259200",
    "frt_gt_259200",
    "duration_le_60",
    "duration_le_300",
    "duration_le_900",
    "duration_le_1800",
    "duration_le_3600",
    "duration_le_14400",
    "duration_le_28800",
    "duration_le_86400",
    "duration_le_259200",
    "duration_gt_259200",
    "rating_1",
    "rating_2",
    "rating_3",
    "rating_4",
    "rating_5",
    "avg_first_response_business_seconds",
    "median_first_response_business_seconds",
    "avg_duration_business_seconds",
    "started_outside_office_hours",
    "sla_first_response_met",
    "sla_first_response_breached",
    "sla_resolution_met",
    "sla_resolution_breached",
    "sla_hit_percent",
    "window_missed_conversations",
]
FAILURE_HEADER = ["failure_code", "failure_title", "failure_messages"]
PRICING_HEADER = ["pricing_category", "pricing_country", "pricing_messages", "pricing_billable"]
DETAILS_HEADER = [
    "started_at",
    "phone",
    "name",
    "contact_tags",
    "conversation_tags",
    "agent",
    "status",
    "direction",
    "source",
    "messages",
    "duration_seconds",
    "first_response_seconds",
    "rating",
    "closed_at",
    "first_response_business_seconds",
    "duration_business_seconds",
    "first_response_due_at",
    "sla_breached",
    "edited_messages",
    "deleted_messages",
    "window_missed",
]

# Names a spreadsheet would run as formulas, or that need CSV quoting.
HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.test","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
    "-1",
    'Dupont, "Jo"\nsecond line',
    "\tTabbed",
    "\rReturned",
    " =1+1",
    "\uff1d1+1",  # a full-width equals sign
]


# -- data ----------------------------------------------------------------------------------------


async def seed(engine: AsyncEngine, account_id: int) -> None:
    """Five conversations in Paris around the 2026-03-29 daylight-saving change, two agents,
    tags on contacts and conversations, and button clicks with UTM values."""
    async with building(engine, account_id) as make:
        alice = await make.agent("alice@acme.test", "Alice, Support")
        bob = await make.agent("bob@acme.test", None)
        lea = await make.contact("+33600000001", "Léa", tags=["VIP", "b2b"])
        hugo = await make.contact("+33600000002", '=HYPERLINK("http://evil.test")')
        zoe = await make.contact("+33600000003", None, tags=["Newsletter"])
        first = await make.conversation(
            lea,
            [
                inbound(at("2026-03-27 09:00", PARIS)),
                priced(reply(at("2026-03-27 09:05", PARIS), alice), "service"),
            ],
            assignee=alice,
            tags=["Sales", "billing"],
            closed_at=at("2026-03-27 10:00", PARIS),
            closed_by=alice,
            ratings=[(at("2026-03-27 10:01", PARIS), 4)],
        )
        # 01:15 UTC on the day clocks go forward: 03:15 in Paris, offset +02:00.
        await make.conversation(
            hugo,
            [
                inbound(at("2026-03-29 01:15")),
                priced(
                    with_status(reply(at("2026-03-29 01:20"), bob), "failed", RE_ENGAGEMENT),
                    "marketing",
                    billable=False,
                ),
            ],
            assignee=bob,
            tags=["Support"],
        )
        await make.conversation(
            zoe,
            [inbound(at("2026-03-30 23:30", PARIS))],
            assignee=alice,
            tags=["Support", "Sales"],
            closed_at=at("2026-03-31 08:00", PARIS),
            closed_by=None,
            ratings=[(at("2026-03-31 08:05", PARIS), 5), (at("2026-03-31 08:10", PARIS), 2)],
        )
        await make.conversation(lea, [inbound(at("2026-03-31 12:00", PARIS))])
        # Outside the range: in no row of any kind.
        await make.conversation(zoe, [inbound(at("2026-04-02 12:00", PARIS))], assignee=bob)
        shop = await make.button("Shop footer")
        pricing = await make.button("=Pricing")
        await make.click(
            shop,
            at("2026-03-27 08:55", PARIS),
            referrer="https://shop.test/",
            utm_campaign="spring",
            utm_source="google",
            conversation=first,
        )
        await make.click(shop, at("2026-03-28 14:00", PARIS), utm_campaign="spring")
        await make.click(pricing, at("2026-03-30 10:00", PARIS), utm_campaign="-5% off")


# -- helpers -------------------------------------------------------------------------------------


async def export(
    client: httpx.AsyncClient, who: TestAccount, report: str, flt: dict[str, Any]
) -> dict[str, Any]:
    body = await graphql(client, who, EXPORT, {"report": report, "filter": flt})
    assert "errors" not in body, body
    return body["data"]["exportReportCsv"]  # type: ignore[no-any-return]


async def download(client: httpx.AsyncClient, url: str) -> list[list[str]]:
    assert url.startswith("http://testserver/exports/")
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


async def export_rows(
    client: httpx.AsyncClient, who: TestAccount, report: str, flt: dict[str, Any]
) -> list[list[str]]:
    return await download(client, (await export(client, who, report, flt))["url"])


def assert_cells(cells: list[str], values: list[Any]) -> None:
    """CSV cells equal GraphQL values: null is empty, numbers are plain decimals."""
    assert len(cells) == len(values), (cells, values)
    for cell, value in zip(cells, values, strict=True):
        if value is None:
            assert cell == "", (cells, values)
        elif isinstance(value, float):
            assert "e" not in cell.lower() and "," not in cell, cell
            assert float(cell) == value, (cells, values)
        else:
            assert cell == str(value), (cells, values)


def metric_values(metrics: dict[str, Any]) -> list[Any]:
    """The GraphQL values in CSV column order: a distribution's counts, one column each."""
    values: list[Any] = []
    for name in METRIC_FIELDS:
        value = metrics[name]
        if isinstance(value, list):
            values.extend(item["conversations"] for item in value)
        else:
            values.append(value)
    return values


def tampered(token: str) -> str:
    """The token with one character of its signature changed (not the last one, whose low bits
    are base64 padding that decoding ignores)."""
    index = len(token) - 6
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def payload_of(token: str) -> dict[str, Any]:
    encoded = token.split(".")[-3] if token.startswith(".") else token.split(".")[0]
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    return json.loads(zlib.decompress(raw) if token.startswith(".") else raw)  # type: ignore[no-any-return]


def forged(token: str, payload: dict[str, Any]) -> str:
    """The token with its payload replaced and its signature kept."""
    compressed = token.startswith(".")
    parts = token.lstrip(".").split(".")
    raw = json.dumps(payload, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(zlib.compress(raw) if compressed else raw).decode().rstrip("=")
    return ("." if compressed else "") + ".".join([body, *parts[1:]])


# -- the mutation --------------------------------------------------------------------------------


async def test_mutation_answers_url_expiry_and_filename(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    acme = await create_test_account(engine, name="Acme Café, Inc.", timezone=PARIS)
    before = now()
    made = await export(client, acme, "SUMMARY", {"from": "2026-11-01", "to": "2026-11-30"})
    after = now()
    assert made["filename"] == "wareports-summary-acme-cafe-inc-2026-11-01_2026-11-30.csv"
    assert made["url"].startswith("http://testserver/exports/")
    expires = datetime.fromisoformat(made["expiresAt"]).timestamp()
    assert made["expiresAt"].endswith("Z")
    assert before + 3600 <= expires <= after + 3600
    payload = payload_of(token_of(made["url"]))
    assert payload["account"] == acme.id
    assert payload["report"] == "SUMMARY"
    # The zone is resolved when the link is made: the account's, since none was given.
    assert payload["filter"]["timezone"] == PARIS
    response = await client.get(made["url"])
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="wareports-summary-acme-cafe-inc-2026-11-01_2026-11-30.csv"'
    )


async def test_filename_names_each_kind(client: httpx.AsyncClient, account: TestAccount) -> None:
    flt = {"from": "2026-01-01", "to": "2026-01-31"}
    for kind in ("AGENTS", "TAGS", "DETAILS", "WIDGET"):
        made = await export(client, account, kind, flt)
        assert made["filename"] == f"wareports-{kind.lower()}-acme-2026-01-01_2026-01-31.csv"


async def test_missing_export_scope_is_forbidden(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    reader = await create_test_account(engine, scopes=["reports:read"])
    body = await graphql(
        client,
        reader,
        EXPORT,
        {"report": "SUMMARY", "filter": {"from": "2026-01-01", "to": "2026-01-02"}},
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "reports:export" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"from": "2026-02-01", "to": "2026-01-01"}, "filter.from"),
        ({"from": "2025-01-01", "to": "2026-12-31"}, "filter.to"),
        ({"from": "2026-01-01", "to": "2026-01-02", "timezone": "Mars/Olympus"}, "filter.timezone"),
        (
            {"from": "2026-01-01", "to": "2026-01-02", "contactTags": ["x"] * 101},
            "filter.contactTags",
        ),
    ],
)
async def test_bad_filter_is_bad_user_input(
    client: httpx.AsyncClient, account: TestAccount, flt: dict[str, Any], field: str
) -> None:
    body = await graphql(client, account, EXPORT, {"report": "DETAILS", "filter": flt})
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


async def test_without_secret_key_export_is_not_configured(database_url: str) -> None:
    app = create_app(make_settings(database_url, secret_key=None))
    async with app.router.lifespan_context(app):
        who = await create_test_account(app.state.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = await graphql(
                client,
                who,
                EXPORT,
                {"report": "SUMMARY", "filter": {"from": "2026-01-01", "to": "2026-01-02"}},
            )
            response = await client.get("/exports/anything")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_CONFIGURED"
    assert "WAREPORTS_SECRET_KEY" in body["errors"][0]["message"]
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


# -- the link ------------------------------------------------------------------------------------


async def test_tampered_link_is_403(client: httpx.AsyncClient, account: TestAccount) -> None:
    made = await export(client, account, "DETAILS", {"from": "2026-01-01", "to": "2026-01-31"})
    token = token_of(made["url"])
    payload = tampered(token[:12]) + token[12:]  # a character of the payload
    for bad in (tampered(token), payload, token[:-5], "not-a-token", token + "x"):
        response = await client.get(f"/exports/{bad}")
        assert response.status_code == 403, bad
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.text == "This download link is invalid.\n"


async def test_another_accounts_link_cannot_be_forged(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    async with building(engine, account.id) as make:
        lea = await make.contact("+33600000001", "Victim")
        await make.conversation(lea, [inbound(at("2026-01-10 10:00"))])
    other = await create_test_account(engine, name="Other")
    made = await export(client, other, "DETAILS", {"from": "2026-01-01", "to": "2026-01-31"})
    token = token_of(made["url"])
    payload = payload_of(token)
    assert payload["account"] == other.id
    payload["account"] = account.id
    response = await client.get(f"/exports/{forged(token, payload)}")
    assert response.status_code == 403
    assert "Victim" not in response.text
    # A correctly shaped link signed with another key is refused too.
    link = ExportLink(account.id, "DETAILS", payload["filter"])
    response = await client.get(f"/exports/{sign_link('some-other-key', link)}")
    assert response.status_code == 403
    # The genuine link of the other account shows only its own (empty) data.
    assert await download(client, made["url"]) == [DETAILS_HEADER]


async def test_expired_link_is_410(
    client: httpx.AsyncClient, settings: Settings, account: TestAccount
) -> None:
    made = await export(client, account, "TAGS", {"from": "2026-01-01", "to": "2026-01-31"})
    link = ExportLink(account.id, "TAGS", payload_of(token_of(made["url"]))["filter"])
    ttl = settings.export_ttl_seconds
    assert ttl == 3600
    still = sign_link(SECRET_KEY, link, clock=lambda: now() - ttl + 60)
    response = await client.get(f"/exports/{still}")
    assert response.status_code == 200
    expired = sign_link(SECRET_KEY, link, clock=lambda: now() - ttl - 2)
    response = await client.get(f"/exports/{expired}")
    assert response.status_code == 410
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "expired" in response.text
    # Tampered and expired: the signature is checked first.
    response = await client.get(f"/exports/{tampered(expired)}")
    assert response.status_code == 403


async def test_ttl_setting_sets_expiry(database_url: str) -> None:
    app = create_app(make_settings(database_url, export_ttl_seconds=120))
    async with app.router.lifespan_context(app):
        who = await create_test_account(app.state.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            before = now()
            made = await export(client, who, "WIDGET", {"from": "2026-01-01", "to": "2026-01-02"})
            expires = datetime.fromisoformat(made["expiresAt"]).timestamp()
            assert before + 120 <= expires <= now() + 120
            link = ExportLink(who.id, "WIDGET", payload_of(token_of(made["url"]))["filter"])
            old = sign_link(SECRET_KEY, link, clock=lambda: now() - 125)
            assert (await client.get(f"/exports/{old}")).status_code == 410


async def test_head_answers_the_headers_without_the_file(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(engine, account.id)
    made = await export(client, account, "DETAILS", MARCH)
    response = await client.head(made["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="wareports-details-acme-2026-03-27_2026-03-31.csv"'
    )
    assert response.content == b""


async def test_link_of_a_deleted_account_is_404(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    gone = await create_test_account(engine, name="Gone")
    made = await export(client, gone, "SUMMARY", {"from": "2026-01-01", "to": "2026-01-02"})
    # The token's last use is recorded by the writer after the answer: let it finish before
    # deleting the token and its account (else the two transactions may deadlock).
    await asyncio.gather(*app.state.recording_use.values())
    async with transaction(engine) as session:
        await session.execute(delete(ApiToken).where(ApiToken.account_id == gone.id))  # type: ignore[arg-type]
        await session.execute(delete(Account).where(Account.id == gone.id))  # type: ignore[arg-type]
    response = await client.get(made["url"])
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_link_filter_is_validated_again_when_served(
    client: httpx.AsyncClient, database_url: str, account: TestAccount
) -> None:
    made = await export(client, account, "SUMMARY", {"from": "2026-01-01", "to": "2026-03-31"})
    # The same link on a server whose maximum range has since been lowered to 30 days.
    app = create_app(make_settings(database_url, max_range_days=30))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            response = await other.get(made["url"])
    assert response.status_code == 400
    assert "filter.to" in response.text and "30 days" in response.text


# -- each kind against GraphQL -------------------------------------------------------------------


async def test_summary_rows_equal_the_graphql_report(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(engine, account.id)
    query = f"""query($filter: ReportFilter!) {{ summaryReport(filter: $filter) {{
        totals {METRICS} daily {{ start metrics {METRICS} }} weekly {{ start metrics {METRICS} }}
        bySource {{ source metrics {METRICS} }} failureReasons {{ code title messages }}
        heatmap {{ weekday hour metrics {METRICS} }}
        pricing {{ category country messages billable }} }} }}"""
    report = (await graphql(client, account, query, {"filter": MARCH}))["data"]["summaryReport"]
    rows = await export_rows(client, account, "SUMMARY", MARCH)
    assert rows[0] == [
        "section",
        "start",
        "source",
        *METRIC_HEADER,
        *FAILURE_HEADER,
        "weekday",
        "hour",
        *PRICING_HEADER,
    ]
    # 5 days, 2 ISO weeks (Fri 27 - Sun 29, Mon 30 - Tue 31), 3 sources, 1 total.
    assert [row[:3] for row in rows[1:]] == [
        ["daily", "2026-03-27", ""],
        ["daily", "2026-03-28", ""],
        ["daily", "2026-03-29", ""],
        ["daily", "2026-03-30", ""],
        ["daily", "2026-03-31", ""],
        ["weekly", "2026-03-27", ""],
        ["weekly", "2026-03-30", ""],
        ["source", "", "FLOW"],
        ["source", "", "INBOUND"],
        ["source", "", "INBOX"],
        ["total", "", ""],
        ["failure", "", ""],
        *[["heatmap", "", ""]] * 168,
        ["pricing", "", ""],
        ["pricing", "", ""],
    ]
    none = [None] * (len(FAILURE_HEADER) + 2 + len(PRICING_HEADER))
    no_pricing = [None] * len(PRICING_HEADER)
    expected = [
        *(
            ["daily", day["start"], None, *metric_values(day["metrics"]), *none]
            for day in report["daily"]
        ),
        *(
            ["weekly", w["start"], None, *metric_values(w["metrics"]), *none]
            for w in report["weekly"]
        ),
        *(
            ["source", None, s["source"], *metric_values(s["metrics"]), *none]
            for s in report["bySource"]
        ),
        ["total", None, None, *metric_values(report["totals"]), *none],
        *(
            [
                "failure",
                None,
                None,
                *[None] * len(METRIC_HEADER),
                r["code"],
                r["title"],
                r["messages"],
                None,
                None,
                *no_pricing,
            ]
            for r in report["failureReasons"]
        ),
        *(
            [
                "heatmap",
                None,
                None,
                *metric_values(cell["metrics"]),
                *[None] * len(FAILURE_HEADER),
                cell["weekday"],
                cell["hour"],
                *no_pricing,
            ]
            for cell in report["heatmap"]
        ),
        *(
            [
                "pricing",
                None,
                None,
                *[None] * (len(METRIC_HEADER) + len(FAILURE_HEADER) + 2),
                row["category"],
                row["country"],
                row["messages"],
                row["billable"],
            ]
            for row in report["pricing"]
        ),
    ]
    for cells, values in zip(rows[1:], expected, strict=True):
        assert_cells(cells, values)
    # Alice's reply priced as service (billed), Hugo's failed one as marketing (not billed);
    # both contacts French: one message each, by category.
    pricing = [dict(zip(rows[0], row, strict=True)) for row in rows[-2:]]
    assert [
        [row[f"pricing_{key}"] for key in ("category", "country", "messages", "billable")]
        for row in pricing
    ] == [["marketing", "FR", "1", "0"], ["service", "FR", "1", "1"]]
    rows = rows[:-2]
    # The hours of the week run Monday 00h .. Sunday 23h.
    assert [row[-6:-4] for row in rows[-168:]][:2] == [["1", "0"], ["1", "1"]]
    assert rows[-1][-6:-4] == ["7", "23"]
    rows = rows[:-168]
    # Hugo's reply failed: the one failure reason, after the totals.
    failure = dict(zip(rows[0], rows[-1], strict=True))
    assert (failure["failure_code"], failure["failure_title"]) == ("131047", RE_ENGAGEMENT[1])
    assert failure["failure_messages"] == "1"
    # Figures worked out by hand: 4 conversations and 6 messages in range, 2 closed, 2 rated
    # (4, and 2: the latest of 5 then 2), 2 answered after 300 s each; 2 + 2 + 1 + 1 messages.
    total = dict(zip(rows[0], rows[-2], strict=True))
    assert total["avg_messages_per_conversation"] == "1.5"
    assert total["conversations"] == "4"
    assert total["messages"] == "6"
    assert total["closed_conversations"] == "2"
    assert total["avg_rating"] == "3.0"
    assert total["avg_first_response_seconds"] == "300.0"
    assert total["csat_percent"] == "50.0"  # one of the two rated 4 or 5
    assert [total[f"rating_{rating}"] for rating in range(1, 6)] == ["0", "1", "0", "1", "0"]
    assert (total["frt_le_60"], total["frt_le_300"], total["frt_le_900"]) == ("0", "2", "0")
    # Alice's reply delivered, Bob's failed.
    assert (total["delivered_messages"], total["read_messages"]) == ("1", "0")
    assert total["failed_messages"] == "1"


async def test_agents_rows_equal_the_graphql_report(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(engine, account.id)
    query = f"""query($filter: ReportFilter!) {{ agentReport(filter: $filter) {{
        rows {{ agent {{ email name }} sentMessages metrics {METRICS} }} }} }}"""
    report = (await graphql(client, account, query, {"filter": MARCH}))["data"]["agentReport"]
    rows = await export_rows(client, account, "AGENTS", MARCH)
    assert rows[0] == ["agent_email", "agent_name", "sent_messages", *METRIC_HEADER]
    assert [row[:3] for row in rows[1:]] == [
        ["alice@acme.test", "Alice, Support", "1"],
        ["bob@acme.test", "", "1"],
    ]
    for cells, row in zip(rows[1:], report["rows"], strict=True):
        agent = row["agent"]
        assert_cells(
            cells,
            [agent["email"], agent["name"], row["sentMessages"], *metric_values(row["metrics"])],
        )


async def test_tags_rows_equal_the_graphql_report(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(engine, account.id)
    query = f"""query($filter: ReportFilter!) {{ tagReport(filter: $filter) {{
        rows {{ tag {{ name }} metrics {METRICS} }} }} }}"""
    report = (await graphql(client, account, query, {"filter": MARCH}))["data"]["tagReport"]
    rows = await export_rows(client, account, "TAGS", MARCH)
    assert rows[0] == ["tag", *METRIC_HEADER]
    # Sales 2, Support 2 (ties by name), billing 1.
    assert [row[:2] for row in rows[1:]] == [["Sales", "2"], ["Support", "2"], ["billing", "1"]]
    for cells, row in zip(rows[1:], report["rows"], strict=True):
        assert_cells(cells, [row["tag"]["name"], *metric_values(row["metrics"])])


async def test_details_rows_equal_the_graphql_report(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(engine, account.id)
    query = """query($filter: ReportFilter!) { conversationDetails(filter: $filter, first: 500) {
        edges { node { startedAt closedAt contact { phone name tags { name } } agent { email }
        status direction source tags { name } messageCount durationSeconds firstResponseSeconds
        rating firstResponseBusinessSeconds durationBusinessSeconds firstResponseDueAt
        slaBreached } } } }"""
    body = await graphql(client, account, query, {"filter": MARCH})
    nodes = [edge["node"] for edge in body["data"]["conversationDetails"]["edges"]]
    rows = await export_rows(client, account, "DETAILS", MARCH)
    assert rows[0] == DETAILS_HEADER
    assert len(rows) == 1 + len(nodes) == 5
    for cells, node in zip(rows[1:], nodes, strict=True):
        record = dict(zip(DETAILS_HEADER, cells, strict=True))
        for column, field in (("started_at", "startedAt"), ("closed_at", "closedAt")):
            if node[field] is None:
                assert record[column] == ""
            else:
                assert datetime.fromisoformat(record[column]) == datetime.fromisoformat(node[field])
        contact = node["contact"]
        assert record["phone"] == "'" + contact["phone"]
        assert record["contact_tags"] == "; ".join(tag["name"] for tag in contact["tags"])
        assert record["conversation_tags"] == "; ".join(tag["name"] for tag in node["tags"])
        assert_cells(
            [record[name] for name in DETAILS_HEADER[6:13]],
            [
                node["status"],
                node["direction"],
                node["source"],
                node["messageCount"],
                node["durationSeconds"],
                node["firstResponseSeconds"],
                node["rating"],
            ],
        )
        assert_cells(
            [record[name] for name in DETAILS_HEADER[14:16]],
            [node["firstResponseBusinessSeconds"], node["durationBusinessSeconds"]],
        )
        assert record["first_response_due_at"] == "" and node["firstResponseDueAt"] is None
        assert record["sla_breached"] == "false" and node["slaBreached"] is False
        assert record["agent"] == ("" if node["agent"] is None else node["agent"]["email"])
        expected_name = contact["name"] or ""
        assert record["name"] in (expected_name, "'" + expected_name)
    # Written out by hand: newest first, instants in Paris with their offset.
    assert rows[1] == [
        "2026-03-31T12:00:00+02:00",
        "'+33600000001",
        "Léa",
        "b2b; VIP",
        "",
        "",
        "OPEN",
        "INBOUND",
        "INBOUND",
        "1",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "false",
        "0",
        "0",
        "true",  # Léa's message was never answered: the 24-hour window ran out
    ]
    assert rows[2][0] == "2026-03-30T23:30:00+02:00"
    assert rows[2][4] == "Sales; Support"
    # No office hours, no targets: business times are calendar times.
    assert rows[2][10:] == [
        *("30600", "", "2", "2026-03-31T08:00:00+02:00", "", "30600", "", "false", "0", "0"),
        "true",  # Zoé's message was never answered
    ]
    assert rows[3][:3] == [
        "2026-03-29T03:15:00+02:00",
        "'+33600000002",
        '\'=HYPERLINK("http://evil.test")',
    ]
    assert rows[3][5:12] == ["bob@acme.test", "PENDING", "INBOUND", "INBOUND", "2", "", "300"]
    assert rows[4][:2] == ["2026-03-27T09:00:00+01:00", "'+33600000001"]
    assert rows[4][4] == "billing; Sales"
    assert rows[4][10:14] == ["3600", "300", "4", "2026-03-27T10:00:00+01:00"]
    assert rows[4][14:] == ["300", "3600", "", "false", "0", "0", "false"]


async def test_widget_rows_equal_the_graphql_report(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await seed(engine, account.id)
    groups = [
        "byButton",
        "byReferrer",
        "byUtmCampaign",
        "byUtmMedium",
        "byUtmSource",
        "byUtmTerm",
        "byUtmContent",
    ]
    counts = "{ key clicks conversations }"
    query = f"""query($filter: ReportFilter!) {{ widgetReport(filter: $filter) {{
        clicks conversations daily {{ start clicks conversations }}
        {" ".join(f"{group} {counts}" for group in groups)} }} }}"""
    report = (await graphql(client, account, query, {"filter": MARCH}))["data"]["widgetReport"]
    rows = await export_rows(client, account, "WIDGET", MARCH)
    assert rows[0] == ["group", "key", "clicks", "conversations"]
    names = [
        "button",
        "referrer",
        "utm_campaign",
        "utm_medium",
        "utm_source",
        "utm_term",
        "utm_content",
    ]
    expected: list[list[Any]] = [
        ["daily", day["start"], day["clicks"], day["conversations"]] for day in report["daily"]
    ]
    for name, group in zip(names, groups, strict=True):
        expected.extend(
            [name, row["key"], row["clicks"], row["conversations"]] for row in report[group]
        )
    expected.append(["total", None, report["clicks"], report["conversations"]])
    assert len(rows) == 1 + len(expected)
    for cells, values in zip(rows[1:], expected, strict=True):
        if isinstance(values[1], str) and values[1].startswith(("=", "-")):
            values = [values[0], "'" + values[1], *values[2:]]
        assert_cells(cells, values)
    # By hand: 3 clicks, 1 attributed conversation; buttons by clicks; "-5% off" escaped.
    assert rows[-1] == ["total", "", "3", "1"]
    assert ["button", "Shop footer", "2", "1"] in rows
    assert ["button", "'=Pricing", "1", "0"] in rows
    assert ["utm_campaign", "spring", "2", "1"] in rows
    assert ["utm_campaign", "'-5% off", "1", "0"] in rows
    assert ["utm_source", "", "2", "0"] in rows


# -- formula injection and quoting ---------------------------------------------------------------


async def test_hostile_names_are_escaped_quoted_and_read_back(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    async with building(engine, account.id) as make:
        agent = await make.agent("=evil@acme.test", '@agent, "the" one')
        for number, name in enumerate(HOSTILE_NAMES):
            contact = await make.contact(f"+3360000010{number}", name, tags=[f"-tag{number}"])
            await make.conversation(
                contact,
                [inbound(at(f"2026-01-10 10:0{number}"))],
                assignee=agent,
                tags=["+conversation tag"],
            )
    flt = {"from": "2026-01-10", "to": "2026-01-10"}
    response = await client.get((await export(client, account, "DETAILS", flt))["url"])
    text = response.content.decode("utf-8")
    # The csv module quotes what needs it: the comma/quote/newline name is one quoted cell.
    assert '"Dupont, ""Jo""\nsecond line"' in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(HOSTILE_NAMES)
    names = [row[2] for row in rows[1:]]
    # Newest first, so the names come back in reverse order of creation, each intact.
    assert names == [
        "'\uff1d1+1",
        "' =1+1",
        "'\rReturned",
        "'\tTabbed",
        'Dupont, "Jo"\nsecond line',
        "'-1",
        "'@SUM(A1:A2)",
        "'+cmd|' /C calc'!A0",
        '\'=HYPERLINK("http://evil.test","click")',
    ]
    for row in rows[1:]:
        assert row[1].startswith("'+3360000010")
        assert row[3].startswith("'-tag")
        assert row[4] == "'+conversation tag"
        assert row[5] == "'=evil@acme.test"
    agents = await export_rows(client, account, "AGENTS", flt)
    assert agents[1][:2] == ["'=evil@acme.test", '\'@agent, "the" one']


@pytest.mark.parametrize(
    ("cell", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("  =1+1", "'  =1+1"),
        ("\u3000\uff0bcmd", "'\u3000\uff0bcmd"),  # ideographic space, full-width plus
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("\n=1+1", "'\n=1+1"),
        ("\nline", "'\nline"),
        ("\tTab", "'\tTab"),
        ("a=1", "a=1"),
        ("Ana", "Ana"),
        ("   ", "   "),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_evaluate_are_neutralised(cell: str, escaped: str) -> None:
    assert resolvers.export.escape_cell(cell) == escaped


# -- streaming by pages --------------------------------------------------------------------------


async def test_details_stream_by_keyset_pages_with_batched_lookups(
    client: httpx.AsyncClient,
    app: Starlette,
    engine: AsyncEngine,
    engines: tuple[AsyncEngine, AsyncEngine],
    account: TestAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with building(engine, account.id) as make:
        agent = await make.agent("alice@acme.test", "Alice")
        for number in range(7):
            contact = await make.contact(f"+3360000020{number}", f"Contact {number}", tags=["VIP"])
            # Two conversations share each start instant: the keyset must order them by id.
            await make.conversation(
                contact,
                [inbound(at(f"2026-02-0{1 + number // 2} 10:00"))],
                assignee=agent,
                tags=["Sales"],
            )
    monkeypatch.setattr(resolvers.export, "DETAILS_PAGE_SIZE", 2)
    made = await export(client, account, "DETAILS", {"from": "2026-02-01", "to": "2026-02-28"})
    with counting_statements(*engines, only=("SELECT",)) as statements:
        rows = await download(client, made["url"])
    assert [row[2] for row in rows[1:]] == [
        "Contact 6",
        "Contact 5",
        "Contact 4",
        "Contact 3",
        "Contact 2",
        "Contact 1",
        "Contact 0",
    ]
    # The account's name, its tag list, then one statement per page (2, 2, 2 and 1 rows; the
    # first boundary falls between two conversations of the same instant): contacts, agents and
    # tags come with the page, never a statement per row.
    assert len(statements) == 1 + 1 + 4


# -- the cells of a DETAILS row and their encoding ------------------------------------------------

START = at("2026-03-02 09:00")


def page_row(**values: Any) -> tuple[Any, ...]:
    """A row as `page_query` returns it (the conversation columns, then phone, name, agent
    e-mail, contact tag ids, conversation tag ids): an answered conversation closed after an
    hour, without service-level figures, `values` replacing columns by name."""
    row: dict[str, Any] = {
        "id": 1,
        "started_at": START,
        "closed_at": START + 3600,
        "contact_id": 1,
        "assignee_id": None,
        "status": "CLOSED",
        "direction": "INBOUND",
        "source": "INBOUND",
        "message_count": 2,
        "first_inbound_at": START,
        "first_response_at": START + 300,
        "rating": None,
        "first_response_business_seconds": None,
        "duration_business_seconds": None,
        "first_response_due_at": None,
        "sla_first_response_met": None,
        "sla_resolution_met": None,
        "edited_messages": 0,
        "deleted_messages": 0,
        "window_missed": False,
        "phone": "+33600000001",
        "name": "Léa",
        "agent": None,
        "contact_tags": None,
        "conversation_tags": None,
    }
    assert set(values) <= set(row)
    row.update(values)
    return tuple(row.values())


def details_cells(row: tuple[Any, ...]) -> dict[str, str]:
    tags = export_details.TagNames([])
    write = InstantFormat(ZoneInfo("UTC"))
    cells = export_details.details_row(row, tags, write, resolvers.export.escape_cell)
    return dict(zip(DETAILS_HEADER, cells, strict=True))


def conversation_of(row: tuple[Any, ...]) -> ConversationRow:
    return conversation_row(row[: len(CONVERSATION_COLUMNS)])


FIGURES = [
    "duration_seconds",
    "first_response_seconds",
    "first_response_business_seconds",
    "duration_business_seconds",
    "sla_breached",
]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # No office hours: business times are the calendar times.
        ({}, ["3600", "300", "300", "3600", "false"]),
        (
            {"first_response_business_seconds": 120, "duration_business_seconds": 1800},
            ["3600", "300", "120", "1800", "false"],
        ),
        # Open and unanswered: nothing to measure.
        (
            {"closed_at": None, "first_response_at": None},
            ["", "", "", "", "false"],
        ),
        # Either target missed is a breach; met or without target is not.
        ({"sla_first_response_met": False}, ["3600", "300", "300", "3600", "true"]),
        (
            {"sla_first_response_met": True, "sla_resolution_met": False},
            ["3600", "300", "300", "3600", "true"],
        ),
        (
            {"sla_first_response_met": True, "sla_resolution_met": True},
            ["3600", "300", "300", "3600", "false"],
        ),
        # A reply stamped before the message it answers (a bad event): negative, and `-` would
        # begin a formula.
        (
            {"first_response_at": START - 5, "first_response_business_seconds": -7},
            ["3600", "'-5", "'-7", "3600", "false"],
        ),
    ],
)
def test_details_cells_hold_the_conversation_figures(
    values: dict[str, Any], expected: list[str]
) -> None:
    row = page_row(**values)
    cells = details_cells(row)
    assert [cells[name] for name in FIGURES] == expected
    # The GraphQL rows (`ConversationRow`) give the same figures.
    conversation = conversation_of(row)
    figures = [getattr(conversation, name) for name in FIGURES]
    assert [
        "" if value is None else str(value).lower().replace("-", "'-") for value in figures
    ] == expected


def test_details_cells_written_out() -> None:
    row = page_row(
        closed_at=None,
        rating=4,
        first_response_due_at=START + 900,
        window_missed=True,
        name="=cmd",
        agent="bob@acme.test",
        edited_messages=1,
        deleted_messages=2,
    )
    assert list(details_cells(row).values()) == [
        "2026-03-02T09:00:00+00:00",
        "'+33600000001",
        "'=cmd",
        "",
        "",
        "bob@acme.test",
        "CLOSED",
        "INBOUND",
        "INBOUND",
        "2",
        "",
        "300",
        "4",
        "",
        "300",
        "",
        "2026-03-02T09:15:00+00:00",
        "false",
        "1",
        "2",
        "true",
    ]


CSV_TEXT = st.text(alphabet=st.sampled_from(["a", ",", '"', "\r", "\n", " ", "é", "'", "="]))


@given(page=st.lists(st.lists(st.one_of(CSV_TEXT, st.text(max_size=5)), max_size=5), max_size=5))
@hypothesis_settings(max_examples=500, deadline=None)
def test_encoded_pages_are_what_the_csv_module_writes(page: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(page)
    assert resolvers.export.encode_page(page) == buffer.getvalue().encode("utf-8")


# -- the instant format and the tag list of the DETAILS stream -----------------------------------

ZONES = [
    "UTC",
    PARIS,
    "America/New_York",
    "America/St_Johns",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Europe/Dublin",
    "Europe/Amsterdam",
]


@given(
    zone=st.sampled_from(ZONES),
    instants=st.lists(st.integers(min_value=-2_208_988_800, max_value=4_102_444_800), max_size=50),
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_instant_format_equals_isoformat(zone: str, instants: list[int]) -> None:
    tz = ZoneInfo(zone)
    write = InstantFormat(tz)
    for instant in instants:
        assert write(instant) == datetime.fromtimestamp(instant, tz).isoformat()


def test_instant_format_around_daylight_saving_changes() -> None:
    paris = InstantFormat(ZoneInfo(PARIS))
    # 2026-03-29: 01:59:59 UTC+1 is followed by 03:00:00 UTC+2; 2026-10-25: back to UTC+1.
    assert paris(at("2026-03-29 00:59:59")) == "2026-03-29T01:59:59+01:00"
    assert paris(at("2026-03-29 01:00:00")) == "2026-03-29T03:00:00+02:00"
    assert paris(at("2026-10-25 00:59:59")) == "2026-10-25T02:59:59+02:00"
    assert paris(at("2026-10-25 01:00:00")) == "2026-10-25T02:00:00+01:00"
    lord_howe = InstantFormat(ZoneInfo("Australia/Lord_Howe"))  # a 30-minute shift
    assert lord_howe(at("2026-04-04 14:59:59")) == "2026-04-05T01:59:59+11:00"
    assert lord_howe(at("2026-04-04 15:00:00")) == "2026-04-05T01:30:00+10:30"


@pytest.mark.parametrize(
    "zone", [PARIS, "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "Europe/Dublin"]
)
def test_instant_format_around_every_offset_change_of_a_year(zone: str) -> None:
    tz = ZoneInfo(zone)
    write = InstantFormat(tz)
    start = at("2026-01-01 00:00")
    changes = [
        instant
        for instant in range(start, start + 366 * 86_400, 900)
        if tz.utcoffset(datetime.fromtimestamp(instant, tz))
        != tz.utcoffset(datetime.fromtimestamp(instant - 900, tz))
    ]
    assert len(changes) == 2  # into and out of daylight saving time
    for change in changes:
        for moment in range(change - 3600, change + 3600, 7):
            assert write(moment) == datetime.fromtimestamp(moment, tz).isoformat()


async def test_a_tag_created_during_an_export_is_named(
    engine: AsyncEngine, account: TestAccount
) -> None:
    async with building(engine, account.id) as make:
        lea = await make.contact("+33600000001", "Léa")
        for day in (1, 2):
            await make.conversation(lea, [inbound(at(f"2026-05-0{day} 10:00"))], tags=["Sales"])
    flt = parse_filter(
        from_=date(2026, 5, 1), to=date(2026, 5, 2), account_timezone="UTC", max_range_days=366
    )
    async with session_factory(engine)() as session:
        pages = export_details.details_pages(
            session, account.id, flt, page_size=1, escape=resolvers.export.escape_cell
        )
        first = await anext(pages)
        async with building(engine, account.id) as make:
            older = (
                await make.session.exec(
                    select(Conversation).where(Conversation.started_at == at("2026-05-01 10:00"))
                )
            ).one()
            tag = await make.tag("conversation", "Added later")
            assert older.id is not None and tag.id is not None
            make.session.add(
                ConversationTag(account_id=account.id, conversation_id=older.id, tag_id=tag.id)
            )
        await session.commit()  # the next page reads a fresh snapshot, as the download does
        second = await anext(pages)
        assert await anext(pages, None) is None
    assert first[0][4] == "Sales"
    assert second[0][4] == "Added later; Sales"
