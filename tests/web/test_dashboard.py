"""The dashboard in a real browser: every page against the public API's own answer for the same
filter, the filter bar and the address, load more, the CSV, errors, themes, a narrow screen,
and GraphiQL offline. No request leaves the server (the `watched` fixture checks it)."""

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from strawberry.utils.str_converters import to_camel_case

from api.web import STATIC
from resolvers.export import WIDGET_GROUPS
from tests.web.conftest import Server, Watched

DASHBOARD = STATIC / "dashboard"

FIGURES = (
    "conversations messages distinctContacts avgDurationSeconds avgFirstResponseSeconds avgRating"
    " avgFirstResponseBusinessSeconds slaHitPercent"
)
LAST_30_DAYS = {"preset": "LAST_30_DAYS"}


def raw(value: Any) -> str:
    """A figure as the page keeps it in data-value (JavaScript's String of the JSON value)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def human(seconds: float | None) -> str:
    """The dashboard's durations, worked out here independently."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60:02d} min"
    return f"{total // 86400:,} d {total % 86400 // 3600:02d} h"


def summary(server: Server, filter_: dict[str, Any]) -> Any:
    query = f"""query($f: ReportFilter!) {{ summaryReport(filter: $f) {{
        range {{ from to timezone }} totals {{ {FIGURES} }}
        daily {{ start metrics {{ {FIGURES} }} }} weekly {{ start metrics {{ {FIGURES} }} }}
        bySource {{ source metrics {{ conversations messages }} }} }} }}"""
    return server.graphql(query, {"f": filter_})["summaryReport"]


def cards(watch: Watched) -> dict[str, str]:
    return {
        card.get_attribute("data-metric"): card.get_attribute("data-value")
        for card in watch.page.query_selector_all("#cards .card")
    }


def test_summary_equals_the_api_and_renders_fast(watched: Watched, server: Server) -> None:
    watched.sign_in()
    watched.ready("summary")
    first_render = watched.page.evaluate("document.body.dataset.firstRenderMs")
    print(f"\nSummary first render: {first_render} ms (demo inbox, {server.url})")
    watched.screenshot("summary")
    report = summary(server, LAST_30_DAYS)
    assert report["totals"]["conversations"] > 0  # a test of something
    assert cards(watched) == {name: raw(value) for name, value in report["totals"].items()}
    text = watched.page.inner_text(
        '#cards .card[data-metric="avgFirstResponseSeconds"] .card-value'
    )
    assert text == human(report["totals"]["avgFirstResponseSeconds"])
    assert watched.page.get_attribute("#range", "data-from") == report["range"]["from"]
    assert watched.page.get_attribute("#range", "data-to") == report["range"]["to"]
    chart = watched.page.get_attribute("#daily-chart", "data-values")
    assert chart == ",".join(raw(day["metrics"]["conversations"]) for day in report["daily"])
    assert watched.page.query_selector("#daily-chart canvas") is not None  # uPlot drew it
    weekly = [
        watched.values(f'#weekly tbody [data-column="{name}"]')
        for name in ("start", "messages", "distinctContacts")
    ]
    assert weekly == [
        [week["start"] for week in report["weekly"]],
        [raw(week["metrics"]["messages"]) for week in report["weekly"]],
        [raw(week["metrics"]["distinctContacts"]) for week in report["weekly"]],
    ]
    assert watched.values('#by-source tbody [data-column="source"]') == ["FLOW", "INBOUND", "INBOX"]
    assert watched.values('#by-source tbody [data-column="conversations"]') == [
        raw(source["metrics"]["conversations"]) for source in report["bySource"]
    ]

    # The chart's metric selector: the daily values of the metric chosen.
    watched.page.select_option("#chart-metric", "avgDurationSeconds")
    chart = watched.page.get_attribute("#daily-chart", "data-values")
    assert chart == ",".join(raw(day["metrics"]["avgDurationSeconds"]) for day in report["daily"])


def test_the_filter_changes_the_figures_and_lives_in_the_address(
    watched: Watched, server: Server
) -> None:
    watched.sign_in()
    watched.ready("summary")
    before = cards(watched)
    agents = server.graphql("{ agents { email } }")["agents"]
    chosen = agents[0]["email"]
    watched.page.select_option("#f-agents", [chosen])
    watched.ready("summary")
    watched.page.wait_for_selector(
        f'#cards .card[data-metric="conversations"]:not([data-value="{before["conversations"]}"])',
        state="attached",
    )
    filtered = summary(server, {**LAST_30_DAYS, "agentEmails": [chosen]})
    assert cards(watched) == {name: raw(value) for name, value in filtered["totals"].items()}
    assert cards(watched) != before
    query = parse_qs(urlsplit(watched.page.url).query)
    assert query == {"agent": [chosen]}
    assert server.token not in watched.page.url

    # Another range and sources; the address, opened again (a bookmark), gives the same view.
    watched.page.select_option("#f-preset", "LAST_7_DAYS")
    watched.page.wait_for_selector("#view[data-ready]:not([aria-busy])", state="attached")
    watched.page.select_option("#f-sources", ["INBOUND", "INBOX"])
    watched.page.wait_for_url("**sources=INBOX**".replace("sources", "source"))
    watched.ready("summary")
    expected = summary(
        server, {"preset": "LAST_7_DAYS", "agentEmails": [chosen], "sources": ["INBOUND", "INBOX"]}
    )
    watched.page.wait_for_selector(
        f'#cards .card[data-metric="messages"][data-value="{raw(expected["totals"]["messages"])}"]',
        state="attached",
    )
    assert cards(watched) == {name: raw(value) for name, value in expected["totals"].items()}
    bookmark = watched.page.url
    watched.page.goto(bookmark)
    watched.ready("summary")
    assert cards(watched) == {name: raw(value) for name, value in expected["totals"].items()}
    assert watched.page.eval_on_selector("#f-preset", "select => select.value") == "LAST_7_DAYS"

    # Custom dates: from..to as typed.
    watched.page.select_option("#f-preset", "CUSTOM")
    watched.ready("summary")
    start, end = expected["range"]["from"], expected["range"]["to"]
    watched.page.fill("#f-from", start)
    watched.page.dispatch_event("#f-from", "change")
    watched.ready("summary")
    assert parse_qs(urlsplit(watched.page.url).query)["from"] == [start]
    assert parse_qs(urlsplit(watched.page.url).query)["to"] == [end]


def rows_report(server: Server, kind: str) -> Any:
    key = "agent { email }" if kind == "agentReport" else "tag { name }"
    sent = "sentMessages" if kind == "agentReport" else ""
    query = f"""query($f: ReportFilter!) {{ {kind}(filter: $f) {{ rows {{ {key} {sent}
        metrics {{ conversations messages avgRating }}
        daily {{ metrics {{ conversations }} }} }} }} }}"""
    return server.graphql(query, {"f": LAST_30_DAYS})[kind]["rows"]


def test_agents_and_tags_tables_sort_and_show_sparklines(watched: Watched, server: Server) -> None:
    watched.sign_in(query="?view=agents")
    watched.ready("agents")
    watched.screenshot("agents")
    rows = rows_report(server, "agentReport")
    assert len(rows) > 1
    assert watched.values('#rows tbody [data-column="agent"]') == [
        row["agent"]["email"] for row in rows
    ]
    assert watched.values('#rows tbody [data-column="conversations"]') == [
        raw(row["metrics"]["conversations"]) for row in rows
    ]
    assert watched.values('#rows tbody [data-column="sentMessages"]') == [
        raw(row["sentMessages"]) for row in rows
    ]
    assert watched.values("#rows tbody svg.sparkline", "data-values") == [
        ",".join(raw(day["metrics"]["conversations"]) for day in row["daily"]) for row in rows
    ]
    # Sorting: by messages, descending then ascending; by agent, A to Z.
    header = '#rows thead th[data-column="messages"] button'
    watched.page.click(header)
    watched.page.wait_for_selector(
        '#rows thead th[data-column="messages"][aria-sort="descending"]', state="attached"
    )
    messages = [int(value) for value in watched.values('#rows tbody [data-column="messages"]')]
    assert messages == sorted((row["metrics"]["messages"] for row in rows), reverse=True)
    watched.page.click(header)
    messages = [int(value) for value in watched.values('#rows tbody [data-column="messages"]')]
    assert messages == sorted(row["metrics"]["messages"] for row in rows)
    watched.page.keyboard.press("Tab")  # the headers are buttons: keyboard-usable
    watched.page.click('#rows thead th[data-column="agent"] button')
    emails = watched.values('#rows tbody [data-column="agent"]')
    assert emails == sorted(emails, key=str.lower)

    watched.page.click('#nav a[data-view="tags"]')
    watched.ready("tags")
    watched.screenshot("tags")
    rows = rows_report(server, "tagReport")
    assert rows
    assert watched.values('#rows tbody [data-column="tag"]') == [row["tag"]["name"] for row in rows]
    assert watched.values('#rows tbody [data-column="avgRating"]') == [
        raw(row["metrics"]["avgRating"]) for row in rows
    ]
    assert parse_qs(urlsplit(watched.page.url).query) == {"view": ["tags"]}


def test_details_load_more_appends_the_next_page(watched: Watched, server: Server) -> None:
    watched.sign_in(query="?view=details")
    watched.ready("details")
    watched.screenshot("details")
    query = """query($f: ReportFilter!, $after: String) {
        conversationDetails(filter: $f, first: 50, after: $after) {
            totalCount pageInfo { endCursor }
            edges { node { id startedAt contact { phone } durationSeconds } } } }"""
    first = server.graphql(query, {"f": LAST_30_DAYS})["conversationDetails"]
    second = server.graphql(query, {"f": LAST_30_DAYS, "after": first["pageInfo"]["endCursor"]})[
        "conversationDetails"
    ]
    assert first["totalCount"] > 100
    assert watched.page.get_attribute("#total", "data-value") == str(first["totalCount"])
    started = [edge["node"]["startedAt"] for edge in first["edges"]]
    assert watched.values('#conversations tbody [data-column="startedAt"]') == started
    watched.page.click("#load-more")
    watched.page.wait_for_selector('#shown[data-loaded="100"]', state="attached")
    both = first["edges"] + second["edges"]
    assert watched.values('#conversations tbody [data-column="phone"]') == [
        edge["node"]["contact"]["phone"] for edge in both
    ]
    assert watched.values('#conversations tbody [data-column="durationSeconds"]') == [
        raw(edge["node"]["durationSeconds"]) for edge in both
    ]
    durations = watched.page.eval_on_selector_all(
        '#conversations tbody td[data-column="durationSeconds"]',
        "cells => cells.map(cell => cell.textContent)",
    )
    assert durations == [human(edge["node"]["durationSeconds"]) for edge in both]


def test_whatsapp_button_page(watched: Watched, server: Server) -> None:
    watched.sign_in(query="?view=button")
    watched.ready("button")
    watched.screenshot("button")
    groups = [to_camel_case(attribute) for _, attribute in WIDGET_GROUPS]
    assert len(groups) == 7
    query = (
        "query($f: ReportFilter!) { widgetReport(filter: $f) { "
        "clicks conversations daily { clicks } "
        + " ".join(f"{group} {{ key clicks conversations }}" for group in groups)
        + " } }"
    )
    report = server.graphql(query, {"f": LAST_30_DAYS})["widgetReport"]
    assert report["clicks"] > 0
    assert cards(watched) == {
        "clicks": raw(report["clicks"]),
        "conversations": raw(report["conversations"]),
    }
    assert watched.page.get_attribute("#daily-chart", "data-values") == ",".join(
        raw(day["clicks"]) for day in report["daily"]
    )
    for group in groups:
        assert watched.values(f'#{group} tbody [data-column="key"]') == [
            raw(row["key"]) for row in report[group]
        ]
        assert watched.values(f'#{group} tbody [data-column="clicks"]') == [
            raw(row["clicks"]) for row in report[group]
        ]
        assert watched.values(f'#{group} tbody [data-column="conversations"]') == [
            raw(row["conversations"]) for row in report[group]
        ]


def test_download_csv_from_each_page(watched: Watched, server: Server, tmp_path: Path) -> None:
    watched.sign_in()
    for view, header in [
        ("summary", "section"),
        ("agents", "agent_email"),
        ("tags", "tag"),
        ("details", "started_at"),
        ("button", "group"),
    ]:
        watched.page.goto(f"{server.url}/?view={view}")
        watched.ready(view)
        with watched.page.expect_download() as download:
            watched.page.click("#download")
        saved = tmp_path / f"{view}.csv"
        download.value.save_as(saved)
        rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
        assert header in rows[0], (view, rows[0])
        assert len(rows) > 1
        assert download.value.suggested_filename.startswith("wareports-")


def test_a_wrong_token_shows_the_message(watched: Watched, server: Server) -> None:
    watched.allowed.append(r"status of 401")  # the browser logs the refused request itself
    watched.sign_in(token="wr_not-a-token")
    watched.page.wait_for_selector("#message:not([hidden])")
    assert watched.page.get_attribute("#message", "data-code") == "UNAUTHENTICATED"
    assert "token" in watched.page.inner_text("#message")
    assert watched.page.is_visible("#sign-in")
    assert watched.page.evaluate("sessionStorage.getItem('wareports.token')") is None
    watched.screenshot("wrong-token")


def test_a_token_without_the_export_scope_is_told_so(watched: Watched, server: Server) -> None:
    created = json.loads(
        server.command("token", "create", "--account", "1", "--scopes", "reports:read")
    )
    watched.sign_in(token=created["token"])
    watched.ready("summary")
    watched.page.click("#download")
    watched.page.wait_for_selector('#message[data-code="FORBIDDEN"]:not([hidden])')
    assert "reports:export" in watched.page.inner_text("#message")


def test_themes_and_a_narrow_screen(watched: Watched, server: Server) -> None:
    watched.page.set_viewport_size({"width": 360, "height": 740})
    watched.sign_in()
    watched.ready("summary")
    watched.screenshot("summary-360px")
    width = watched.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways at 360 px: {width}"
    background = "getComputedStyle(document.body).backgroundColor"
    watched.page.click("#theme")  # auto -> light
    light = watched.page.evaluate(background)
    watched.page.click("#theme")  # light -> dark
    watched.ready("summary")
    assert watched.page.get_attribute("html", "data-theme") == "dark"
    dark = watched.page.evaluate(background)
    assert light != dark
    watched.screenshot("summary-dark-360px")
    for label in ("#f-preset", "#f-agents", "#f-sources", "#f-timezone", "#chart-metric"):
        name = watched.page.eval_on_selector(label, "control => control.labels.length")
        assert name == 1, label


def test_graphiql_runs_offline(watched: Watched, server: Server) -> None:
    watched.sign_in()  # GraphiQL's headers start with the tab's token
    watched.ready("summary")
    watched.page.goto(f"{server.url}/graphql")
    watched.page.wait_for_selector(".graphiql-execute-button")
    watched.page.click(".graphiql-execute-button")
    emails = [agent["email"] for agent in server.graphql("{ agents { email } }")["agents"]]
    watched.page.wait_for_selector(f'.result-window :text("{emails[-1]}")')
    answer = watched.page.inner_text(".result-window")
    assert all(email in answer for email in emails)
    # The token stays in the tab's session storage: GraphiQL keeps none of it in local storage.
    assert server.token not in watched.page.evaluate("JSON.stringify(localStorage)")
    # The explorer plugin, also from this server: it lists the Query fields from introspection.
    watched.page.click('button[aria-label="Show GraphiQL Explorer"]')
    watched.page.wait_for_selector(".graphiql-explorer-root :text('summaryReport')")
    watched.screenshot("graphiql")


def test_a_refused_filter_names_its_field(watched: Watched, server: Server) -> None:
    watched.sign_in()
    watched.ready("summary")
    watched.page.fill("#f-timezone", "Mars/Olympus_Mons")
    watched.page.dispatch_event("#f-timezone", "change")
    watched.page.wait_for_selector('#message[data-code="BAD_USER_INPUT"]:not([hidden])')
    message = watched.page.inner_text("#message")
    assert "filter.timezone" in message and "Mars/Olympus_Mons" in message
    assert parse_qs(urlsplit(watched.page.url).query) == {"timezone": ["Mars/Olympus_Mons"]}
    watched.page.fill("#f-timezone", "America/New_York")  # corrected: the message goes
    watched.page.dispatch_event("#f-timezone", "change")
    watched.page.wait_for_selector("#message[hidden]", state="attached")
    watched.ready("summary")
    assert watched.page.get_attribute("#range", "data-timezone") == "America/New_York"


def test_assets_are_small_and_compressed(server: Server) -> None:
    """Every file the dashboard loads, as the server sends it to a browser (gzip)."""
    files = [
        "/",
        "/assets/vendor/uplot-1.6.32/uPlot.min.css",
        "/assets/vendor/uplot-1.6.32/uPlot.esm.js",
        *(
            f"/assets/dashboard/{path.name}"
            for path in sorted(DASHBOARD.iterdir())
            if path.name != "index.html"
        ),
    ]
    total = 0
    with httpx.Client(base_url=server.url, headers={"Accept-Encoding": "gzip"}) as http:
        for path in files:
            with http.stream("GET", path) as response:
                assert response.status_code == 200, path
                total += sum(len(chunk) for chunk in response.iter_raw())
                if path.endswith(".js"):
                    assert response.headers["content-encoding"] == "gzip", path
    print(f"\nDashboard assets: {total / 1000:.1f} kB compressed")
    assert total <= 300_000
