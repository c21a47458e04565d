"""The shared ReportFilter: every list filter (ANY inside a list, AND between lists,
case-insensitive), and every BAD_USER_INPUT it raises, naming the field, on every report."""

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TestAccount, create_test_account, graphql
from tests.reports.dataset import METRICS, RANGE, ZERO, build_dataset, m

TOTALS = (
    METRICS
    + """
query ($filter: ReportFilter!) {
  summaryReport(filter: $filter) { totals { ...M } bySource { source metrics { conversations } } }
}
"""
)

ELEVEN_THIRDS = 3.6666666666666665
ALL = m(
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
)

FILTERED_TOTALS = [
    pytest.param({}, ALL, id="no-lists"),
    pytest.param(
        {"contactTags": [], "conversationTags": [], "agentEmails": [], "sources": []},
        ALL,
        id="empty-lists",
    ),
    # c1, c2: K1, K2, K5 (+ K0's messages).
    pytest.param(
        {"contactTags": ["vip"]},
        m(
            conversations=3,
            inbound_conversations=2,
            distinct_contacts=2,
            messages=12,
            inbound_messages=5,
            outbound_messages=7,
            closed=3,
            avg_duration=3800.0,
            avg_first_response=940.0,
            avg_rating=3.5,
            rated=2,
        ),
        id="contact-tag",
    ),
    # c1, c2, c4: K8, K1, K2, K4, K5.
    pytest.param(
        {"contactTags": ["VIP", "wholesale"]},
        m(
            conversations=5,
            inbound_conversations=3,
            distinct_contacts=3,
            messages=18,
            inbound_messages=8,
            outbound_messages=10,
            closed=4,
            avg_duration=3750.0,
            avg_first_response=984.0,
            avg_rating=ELEVEN_THIRDS,
            rated=3,
        ),
        id="contact-tags-any",
    ),
    pytest.param(
        {"conversationTags": ["billing"]},
        m(
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
        id="conversation-tag",
    ),
    # K8, K1, K5, K2 (+ K0's messages).
    pytest.param(
        {"conversationTags": ["SALES", " support "]},
        m(
            conversations=4,
            inbound_conversations=3,
            distinct_contacts=3,
            messages=15,
            inbound_messages=7,
            outbound_messages=8,
            closed=4,
            avg_duration=3750.0,
            avg_first_response=780.0,
            avg_rating=ELEVEN_THIRDS,
            rated=3,
        ),
        id="conversation-tags-any",
    ),
    pytest.param(
        {"agentEmails": ["BOB@acme.test"]},
        m(
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
        id="agent",
    ),
    pytest.param(
        {"agentEmails": ["alice@acme.test", "Carol@Acme.Test"]},
        m(
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
        id="agents-any",
    ),
    pytest.param(
        {"sources": ["FLOW"]},
        m(
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
        id="source",
    ),
    pytest.param(
        {"sources": ["INBOUND", "INBOX"]},
        m(
            conversations=5,
            inbound_conversations=4,
            distinct_contacts=4,
            messages=17,
            inbound_messages=8,
            outbound_messages=9,
            closed=3,
            avg_duration=3800.0,
            avg_first_response=840.0,
            avg_rating=4.5,
            rated=2,
        ),
        id="sources-any",
    ),
    # Lists AND together: K4 is the only INBOX conversation of a Wholesale contact.
    pytest.param(
        {"contactTags": ["wholesale"], "sources": ["INBOX"]},
        m(
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
        id="contact-tag-and-source",
    ),
    pytest.param(
        {"conversationTags": ["sales"], "agentEmails": ["carol@acme.test"]},
        m(
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
        id="conversation-tag-and-agent",
    ),
    pytest.param({"conversationTags": ["nope"]}, ZERO, id="unknown-tag"),
    # A contact tag name is not a conversation tag.
    pytest.param({"conversationTags": ["vip"]}, ZERO, id="kinds-differ"),
]


@pytest.mark.parametrize(("lists", "expected"), FILTERED_TOTALS)
async def test_list_filters(
    client: httpx.AsyncClient, engine: AsyncEngine, lists: dict[str, Any], expected: dict[str, Any]
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, TOTALS, {"filter": {**RANGE, **lists}})
    assert body["data"]["summaryReport"]["totals"] == expected


async def test_source_filter_keeps_every_source_entry(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = await build_dataset(engine)
    body = await graphql(client, data.account, TOTALS, {"filter": {**RANGE, "sources": ["FLOW"]}})
    assert body["data"]["summaryReport"]["bySource"] == [
        {"source": "FLOW", "metrics": {"conversations": 2}},
        {"source": "INBOUND", "metrics": {"conversations": 0}},
        {"source": "INBOX", "metrics": {"conversations": 0}},
    ]


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    (error,) = body["errors"]
    return error  # type: ignore[no-any-return]


def assert_bad_input(body: dict[str, Any], field: str) -> None:
    error = error_of(body)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert field in error["message"]


REPORT_QUERIES = {
    "summaryReport": "summaryReport(filter: $f) { totals { conversations } }",
    "agentReport": "agentReport(filter: $f) { rows { sentMessages } }",
    "tagReport": "tagReport(filter: $f) { rows { tag { name } } }",
    "conversationDetails": "conversationDetails(filter: $f) { totalCount }",
    "widgetReport": "widgetReport(filter: $f) { clicks }",
}

BAD_FILTERS = [
    pytest.param({"from": "2026-04-02", "to": "2026-03-27"}, "filter.from", id="from-after-to"),
    pytest.param({**RANGE, "timezone": "Mars/Olympus"}, "filter.timezone", id="unknown-zone"),
    pytest.param({**RANGE, "timezone": ""}, "filter.timezone", id="empty-zone"),
    pytest.param({**RANGE, "timezone": "../../etc/passwd"}, "filter.timezone", id="path-zone"),
    pytest.param({**RANGE, "timezone": "Europe"}, "filter.timezone", id="directory-zone"),
    pytest.param({**RANGE, "timezone": "z" * 5000}, "filter.timezone", id="long-zone"),
    pytest.param({**RANGE, "timezone": "Europe/Paris\u0000"}, "filter.timezone", id="nul-zone"),
    # Names that load but are not canonical IANA Area/Location zones (nor UTC).
    pytest.param({**RANGE, "timezone": "EST5EDT"}, "filter.timezone", id="legacy-zone"),
    pytest.param({**RANGE, "timezone": "Factory"}, "filter.timezone", id="factory-zone"),
    pytest.param({**RANGE, "timezone": "localtime"}, "filter.timezone", id="localtime-zone"),
    pytest.param({**RANGE, "timezone": "US/Eastern"}, "filter.timezone", id="backward-zone"),
    # 2026-01-01 .. 2027-01-02 is 367 days, one more than the default maximum.
    pytest.param({"from": "2026-01-01", "to": "2027-01-02"}, "filter.to", id="range-too-long"),
    pytest.param({"from": "1969-12-31", "to": "1970-01-02"}, "filter.from", id="before-1970"),
    pytest.param({**RANGE, "contactTags": ["t"] * 101}, "filter.contactTags", id="contact-tags"),
    pytest.param(
        {**RANGE, "conversationTags": [f"t{n}" for n in range(101)]},
        "filter.conversationTags",
        id="conversation-tags",
    ),
    pytest.param({**RANGE, "agentEmails": ["a@b"] * 101}, "filter.agentEmails", id="agent-emails"),
    pytest.param({**RANGE, "sources": ["FLOW"] * 101}, "filter.sources", id="sources"),
    pytest.param({**RANGE, "contactTags": ["a\u0000"]}, "filter.contactTags", id="nul-contact-tag"),
    pytest.param(
        {**RANGE, "conversationTags": ["\u0000"]}, "filter.conversationTags", id="nul-tag"
    ),
    pytest.param({**RANGE, "agentEmails": ["a@b\u0000"]}, "filter.agentEmails", id="nul-email"),
]


@pytest.mark.parametrize(("filters", "field"), BAD_FILTERS)
@pytest.mark.parametrize("report", list(REPORT_QUERIES))
async def test_bad_filters_name_the_field(
    client: httpx.AsyncClient,
    account: TestAccount,
    report: str,
    filters: dict[str, Any],
    field: str,
) -> None:
    query = f"query ($f: ReportFilter!) {{ {REPORT_QUERIES[report]} }}"
    assert_bad_input(await graphql(client, account, query, {"f": filters}), field)


async def test_limits_are_inclusive(client: httpx.AsyncClient, account: TestAccount) -> None:
    query = "query ($f: ReportFilter!) { summaryReport(filter: $f) { totals { conversations } } }"
    for filters in (
        {"from": "2026-01-01", "to": "2027-01-01"},  # 366 days
        {"from": "2026-03-27", "to": "2026-03-27"},  # one day
        {"from": "1970-01-01", "to": "1970-01-01", "timezone": "Pacific/Kiritimati"},
        {
            **RANGE,
            "contactTags": [f"t{n}" for n in range(100)],
            "conversationTags": ["x"] * 100,
            "agentEmails": ["a@b"] * 100,
            "sources": ["FLOW", "INBOX"] * 50,
        },
    ):
        body = await graphql(client, account, query, {"f": filters})
        assert body == {"data": {"summaryReport": {"totals": {"conversations": 0}}}}, filters


async def test_max_range_follows_the_settings(engine: AsyncEngine, database_url: str) -> None:
    from api.app import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings(database_url, max_range_days=7))
    async with application.router.lifespan_context(application):
        account = await create_test_account(application.state.engine)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            query = "query ($f: ReportFilter!) { tagReport(filter: $f) { rows { tag { id } } } }"
            body = await graphql(
                http, account, query, {"f": {"from": "2026-03-01", "to": "2026-03-07"}}
            )
            assert body == {"data": {"tagReport": {"rows": []}}}
            body = await graphql(
                http, account, query, {"f": {"from": "2026-03-01", "to": "2026-03-08"}}
            )
            assert_bad_input(body, "filter.to")
            assert "8 days" in error_of(body)["message"]


DETAILS = """query ($f: ReportFilter!, $first: Int, $after: String) {
  conversationDetails(filter: $f, first: $first, after: $after) { edges { cursor } totalCount }
}"""


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("first", [0, -1, 501, 10_000])
async def test_first_out_of_bounds(
    client: httpx.AsyncClient, account: TestAccount, first: int
) -> None:
    body = await graphql(client, account, DETAILS, {"f": RANGE, "first": first})
    assert_bad_input(body, "first")


@pytest.mark.parametrize(
    "after",
    [
        "",
        "garbage",
        "!!!!",
        cursor_of("v2:1774600000:3"),
        cursor_of("v1:abc:3"),
        cursor_of("v1:1774600000"),
        cursor_of("v1:1774600000:0"),
        cursor_of("v1:1774600000:3:4"),
        cursor_of("v1:99999999999999999999999:3"),
        cursor_of("v1:1774600000:2147483648"),  # past PostgreSQL's INTEGER ids (was a 500 there)
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        cursor_of("v1:1774600000:3") + "==",
    ],
)
async def test_malformed_cursor(
    client: httpx.AsyncClient, account: TestAccount, after: str
) -> None:
    body = await graphql(client, account, DETAILS, {"f": RANGE, "after": after})
    assert_bad_input(body, "after")


async def test_page_bounds_are_inclusive(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    data = await build_dataset(engine)
    for first in (1, 500):
        body = await graphql(client, data.account, DETAILS, {"f": RANGE, "first": first})
        assert len(body["data"]["conversationDetails"]["edges"]) == min(first, 7)
    body = await graphql(client, data.account, DETAILS, {"f": RANGE, "first": None})
    assert len(body["data"]["conversationDetails"]["edges"]) == 7
    # A well-formed cursor past every row is an empty page, not an error.
    body = await graphql(client, data.account, DETAILS, {"f": RANGE, "after": cursor_of("v1:0:1")})
    assert body["data"]["conversationDetails"] == {"edges": [], "totalCount": 7}


@pytest.mark.parametrize("report", list(REPORT_QUERIES))
async def test_reports_need_the_read_scope(
    client: httpx.AsyncClient, engine: AsyncEngine, report: str
) -> None:
    writer = await create_test_account(engine, name="Writer", scopes=["ingest:write"])
    query = f"query ($f: ReportFilter!) {{ {REPORT_QUERIES[report]} }}"
    body = await graphql(client, writer, query, {"f": RANGE})
    assert error_of(body)["extensions"]["code"] == "FORBIDDEN"


async def test_a_malformed_date_variable_is_bad_user_input(
    client: httpx.AsyncClient, account: TestAccount
) -> None:
    body = await graphql(
        client,
        account,
        "query ($f: ReportFilter!) { summaryReport(filter: $f) { totals { conversations } } }",
        {"f": {"from": "2026-13-01", "to": "2026-11-30"}},
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "from" in error["message"] and "2026-13-01" in error["message"]


@pytest.mark.parametrize(
    "spelled",
    ["20260201", "2026-W05-1", 20260201, "2026-032", "\uff12026-02-01", "2026-02-01T00:00"],
)
async def test_a_date_is_only_yyyy_mm_dd(
    client: httpx.AsyncClient, account: TestAccount, spelled: Any
) -> None:
    """Python's date.fromisoformat also reads the basic and week forms (and str() made an integer
    a date): all of them were taken as dates."""
    body = await graphql(
        client,
        account,
        "query ($f: ReportFilter!) { summaryReport(filter: $f) { totals { conversations } } }",
        {"f": {"from": spelled, "to": "2026-02-28"}},
    )
    error = error_of(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "YYYY-MM-DD" in error["message"]
    literal = json.dumps(spelled) if isinstance(spelled, str) else str(spelled)
    selection = "{ totals { conversations } }"
    query = f'{{ summaryReport(filter: {{from: {literal}, to: "2026-02-28"}}) {selection} }}'
    body = await graphql(client, account, query)
    error = error_of(body)  # a literal is refused while validating the document
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "YYYY-MM-DD" in error["message"]
    zones = await graphql(
        client,
        account,
        '{ summaryReport(filter: {from: "2026-02-01", to: "2026-02-28", timezone: "UTC"})'
        " { totals { conversations } } }",
    )
    assert zones == {"data": {"summaryReport": {"totals": {"conversations": 0}}}}
