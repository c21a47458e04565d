"""The `wareports` command line against a temporary SQLite file: one JSON line per create/add
command, clear one-line errors without traceback, and `wareports demo` giving a working token."""

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from api.app import create_app
from api.cli import app
from models.db import create_engine
from models.settings import get_settings
from tests.conftest import make_settings

runner = CliRunner()
WAREPORTS = str(Path(sys.executable).with_name("wareports"))  # the console script


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A SQLite file named by WAREPORTS_DATABASE_URL for the commands run in this test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WAREPORTS_DATABASE_URL", url)
    # `wareports demo` fills these in when absent; set, they are restored after the test.
    monkeypatch.setenv("WAREPORTS_SECRET_KEY", "cli-test-secret")
    monkeypatch.setenv("WAREPORTS_PUBLIC_URL", "http://testserver")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def json_line(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])  # type: ignore[no-any-return]


def fails(result: Result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert result.stdout == ""
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    assert "Traceback" not in result.output


def test_migrate_then_create_account_channel_and_tokens(database: str) -> None:
    assert run("migrate").stdout == "migrations applied\n"
    account = json_line(run("account", "create", "--name", "Acme", "--timezone", "Europe/Paris"))
    assert account == {
        "id": account["id"],
        "name": "Acme",
        "timezone": "Europe/Paris",
        "autoCloseHours": 24.0,
    }
    assert isinstance(account["id"], int)
    channel = json_line(
        run(
            "channel", "add", "--account", str(account["id"]),
            "--phone-number-id", "106540352242922", "--display-number", "+33612345678",
            "--app-secret", "s3cret-app", "--verify-token", "vt-1",
        )
    )  # fmt: skip
    assert channel == {
        "id": channel["id"],
        "accountId": account["id"],
        "phoneNumberId": "106540352242922",
        "displayNumber": "+33612345678",
        "businessAppAgent": "business-app@33612345678",
    }
    named = json_line(
        run(
            "channel", "add", "--account", str(account["id"]),
            "--phone-number-id", "106540352242923", "--display-number", "+33612345679",
            "--app-secret", "s3cret-app", "--verify-token", "vt-2",
            "--business-app-agent", "Shop@Example.com",
        )
    )  # fmt: skip
    assert named["businessAppAgent"] == "shop@example.com"
    fails(
        run(
            "channel", "add", "--account", str(account["id"]),
            "--phone-number-id", "106540352242924", "--display-number", "+33612345670",
            "--app-secret", "s", "--verify-token", "vt-3", "--business-app-agent", "nobody",
        ),
        2,
        "business-app-agent: 'nobody' is not an e-mail address",
    )  # fmt: skip
    token = json_line(
        run(
            "token", "create", "--account", str(account["id"]),
            "--scopes", "reports:read,ingest:write", "--name", "partner",
        )
    )  # fmt: skip
    assert token["scopes"] == ["reports:read", "ingest:write"]
    assert token["name"] == "partner"
    assert token["accountId"] == account["id"]
    assert re.fullmatch(r"wr_[A-Za-z0-9_-]{43}", token["token"])
    revoked = json_line(run("token", "revoke", str(token["id"])))
    assert revoked["id"] == token["id"]
    assert isinstance(revoked["revokedAt"], int)


def test_bad_input_exits_with_a_clear_message(database: str) -> None:
    fails(
        run("account", "create", "--name", "Acme", "--timezone", "Mars/Olympus"),
        2,
        "error: timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Paris",
    )
    fails(
        run("account", "create", "--name", "Acme", "--timezone", "Europe"),
        2,
        "error: timezone: unknown time zone 'Europe'; use an IANA name such as Europe/Paris",
    )
    # A legacy name loads, but is not what people mean by a place (issue 12).
    fails(
        run("account", "create", "--name", "Acme", "--timezone", "EST5EDT"),
        2,
        "error: timezone: unknown time zone 'EST5EDT'; use an IANA name such as Europe/Paris",
    )
    fails(run("account", "create", "--name", " "), 2, "error: name: must not be empty")
    account = json_line(run("account", "create", "--name", "Acme"))
    fails(
        run("token", "create", "--account", str(account["id"]), "--scopes", "reports:read,root"),
        2,
        "error: scopes: unknown scope(s) root; known: reports:read, reports:export, "
        "ingest:write, admin",
    )
    fails(run("token", "create", "--account", "999", "--scopes", "admin"), 2, "no account 999")
    fails(run("token", "revoke", "4242"), 2, "error: no token 4242")
    channel = (
        "channel", "add", "--account", str(account["id"]), "--phone-number-id", "1065",
        "--display-number", "+33612345678", "--app-secret", "a", "--verify-token", "v",
    )  # fmt: skip
    json_line(run(*channel))
    fails(run(*channel), 2, "error: phone-number-id: '1065' is already registered")
    usage = run("token", "create", "--account", "one", "--scopes", "admin")
    assert usage.exit_code == 2
    assert "Invalid value for '--account'" in usage.stderr


def command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script in a process of its own, as a person or a script would."""
    return subprocess.run(  # noqa: S603  (our own console script)
        [WAREPORTS, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, WAREPORTS_DATABASE_URL=database_url),
        timeout=60,
        check=False,
    )


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    done = command(
        f"sqlite+aiosqlite:///{tmp_path}/p.db", "account", "create", "--name", "A",
        "--timezone", "Nowhere",
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: timezone: unknown time zone 'Nowhere'; use an IANA name such as Europe/Paris\n"
    )
    unusable = command(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir.db", "migrate")
    assert (unusable.returncode, unusable.stdout) == (1, "")
    assert unusable.stderr == "error: database OperationalError: unable to open database file\n"


async def test_demo_fills_an_account_whose_token_answers(database: str) -> None:
    # the command runs its own event loop: give it a thread of its own
    command = ("demo", "--no-serve", "--conversations", "200", "--days", "30", "--seed", "2")
    first = await asyncio.to_thread(run, *command)
    assert first.exit_code == 0, first.output
    second = await asyncio.to_thread(run, *command)
    assert second.exit_code == 0, second.output
    assert "200 conversations" in second.stdout
    assert "GraphiQL: http://127.0.0.1:8000/graphql" in second.stdout
    assert "Dashboard: http://127.0.0.1:8000/ " in second.stdout
    stale = re.search(r"Token \(every scope, shown once\): (wr_\S+)", first.stdout)
    token = re.search(r"Token \(every scope, shown once\): (wr_\S+)", second.stdout)
    assert stale is not None and token is not None

    engine = create_engine(database)
    async with engine.connect() as connection:
        # refreshed, not added: one Demo account holding the 200 conversations
        counts = await connection.execute(
            text(
                "SELECT (SELECT COUNT(*) FROM account WHERE name = 'Demo'),"
                " (SELECT COUNT(*) FROM conversation), (SELECT COUNT(*) FROM agent)"
            )
        )
        assert tuple(counts.one()) == (1, 200, 12)
    await engine.dispose()

    application = create_app(make_settings(database))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            query = {"query": "{ agents { email } }"}
            answer = await http.post(
                "/graphql", json=query, headers={"Authorization": f"Bearer {token.group(1)}"}
            )
            assert answer.status_code == 200
            emails = [agent["email"] for agent in answer.json()["data"]["agents"]]
            assert len(emails) == 12
            assert "camille.martin@demo-shop.test" in emails
            assert "louis.durand@demo-shop.test" in emails
            # the reports see the whole demo inbox (Paris days covering the last 30 days)
            today = datetime.now(ZoneInfo("Europe/Paris")).date()
            summary = {
                "query": "query ($f: ReportFilter!) { summaryReport(filter: $f) "
                "{ totals { conversations } } }",
                "variables": {"f": {"from": str(today - timedelta(days=31)), "to": str(today)}},
            }
            answer = await http.post(
                "/graphql", json=summary, headers={"Authorization": f"Bearer {token.group(1)}"}
            )
            assert answer.json() == {"data": {"summaryReport": {"totals": {"conversations": 200}}}}
            old = await http.post(
                "/graphql", json=query, headers={"Authorization": f"Bearer {stale.group(1)}"}
            )
            assert old.status_code == 401  # the previous demo account is gone with its token


def test_demo_leaves_a_real_account_named_demo_alone(database: str) -> None:
    real = json_line(run("account", "create", "--name", "Demo"))
    json_line(
        run(
            "channel", "add", "--account", str(real["id"]), "--phone-number-id", "55501",
            "--display-number", "+33612345678", "--app-secret", "a", "--verify-token", "v",
        )
    )  # fmt: skip
    fails(
        run("demo", "--no-serve", "--conversations", "10"),
        2,
        f"error: account: account {real['id']} is named 'Demo' but was not made by "
        "`wareports demo`",
    )


@pytest.mark.parametrize("selection", [(), ("--no-percentiles", "--no-distinct-contacts")])
def test_bench_times_every_report_of_a_small_account(
    database: str, selection: tuple[str, ...]
) -> None:
    """`wareports bench` (code in benchmarks/, which the server never imports) generates an
    account and times each report and details page; exit 1 only says a target was missed."""
    result = run(
        "bench",
        *selection,
        "--conversations",
        "300",
        "--repeat",
        "1",
        "--no-warmup",
        "--no-export",
        "--database-url",
        database,
    )
    assert isinstance(result.exception, SystemExit), result.output  # no escaped exception
    assert result.exit_code in (0, 1), result.output
    timed = [line.split()[0] for line in result.stdout.splitlines() if re.match(r"\w+ +\d", line)]
    assert {"summary", "heatmap", "agents", "tags", "widget"} <= set(timed), result.stdout
    assert re.search(r"^details 500 +365", result.stdout, re.MULTILINE), result.stdout
    # The drill-downs: on the summary, and on the details' first page.
    assert re.search(r"^summary +90 hours ", result.stdout, re.MULTILINE), result.stdout
    for drill in ("hours", "frt", "noreply", "rated5"):
        assert re.search(rf"^details 50 +365 {drill} ", result.stdout, re.MULTILINE), drill
    # A verdict per budget: the widget's for a year among them (issue 15).
    assert re.search(
        r"^target widget 365 days agent <= 250 ms: (met|MISSED) \(", result.stdout, re.M
    )
    assert re.search(r"^target details 500 365 days none <= 80 ms: ", result.stdout, re.M)
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict in ("every target met", "TARGETS MISSED (lines marked NO above)")
    chosen = "WITHOUT" if selection else "with"
    assert f"{chosen} distinctContacts, {chosen} percentiles" in result.stdout


def test_the_bench_selects_what_it_is_told() -> None:
    from benchmarks.reports import metrics_fragment

    everything = metrics_fragment(True, True)
    assert "distinctContacts" in everything and "medianFirstResponseSeconds" in everything
    assert "ratingDistribution { rating conversations }" in everything
    fewer = metrics_fragment(False, False)
    assert "distinctContacts" not in fewer and "median" not in fewer and "p90" not in fewer
    assert "firstResponseDistribution { upToSeconds conversations }" in fewer


def test_set_office_hours_prints_them_and_refuses_bad_syntax(database: str) -> None:
    account = json_line(run("account", "create", "--name", "Shop", "--timezone", "Europe/Paris"))
    hours = json_line(
        run(
            "account", "set-office-hours", "--account", str(account["id"]),
            "--schedule", "mon-fri 09:00-12:30,13:30-18:00; sat 22:00-02:00",
            "--closed", "2027-01-01,2026-12-25",
        )
    )  # fmt: skip
    assert hours == {
        "id": account["id"],
        "timezone": "Europe/Paris",
        "schedule": "mon 09:00-12:30,13:30-18:00; tue 09:00-12:30,13:30-18:00; "
        "wed 09:00-12:30,13:30-18:00; thu 09:00-12:30,13:30-18:00; "
        "fri 09:00-12:30,13:30-18:00; sat 22:00-02:00",
        "closedDates": ["2026-12-25", "2027-01-01"],
    }
    base = ("account", "set-office-hours", "--account", str(account["id"]))
    fails(run(*base, "--schedule", "mon-fri 9-18"), 2, "'9-18' in 'mon-fri 9-18'")
    fails(run(*base, "--schedule", "mon 09:00-10:00", "--closed", "25/12"), 2, "'25/12'")
    fails(run(*base), 2, "give --schedule, or --clear")
    fails(run(*base, "--schedule", "mon 09:00-10:00", "--clear"), 2, "give --schedule")
    fails(run("account", "set-office-hours", "--account", "999", "--clear"), 2, "no account 999")
    cleared = json_line(run(*base, "--clear"))
    assert cleared == {
        "id": account["id"],
        "timezone": "Europe/Paris",
        "schedule": None,
        "closedDates": [],
    }


def test_set_sla_prints_the_targets_and_refuses_bad_durations(database: str) -> None:
    account = json_line(run("account", "create", "--name", "Desk"))
    base = ("account", "set-sla", "--account", str(account["id"]))
    assert json_line(run(*base, "--first-response", "15m", "--resolution", "1h30m")) == {
        "id": account["id"],
        "firstResponseSeconds": 900,
        "resolutionSeconds": 5400,
        "businessHours": True,
    }
    assert json_line(run(*base, "--resolution", "2d", "--calendar-hours")) == {
        "id": account["id"],
        "firstResponseSeconds": None,  # replaced: only what is given
        "resolutionSeconds": 172_800,
        "businessHours": False,
    }
    fails(run(*base, "--first-response", "15 minutes"), 2, "'15 minutes' is not a duration")
    fails(run(*base, "--resolution", "0h"), 2, "at least 1 second")
    fails(run(*base), 2, "give --first-response and/or --resolution, or --clear")
    fails(run(*base, "--first-response", "1h", "--clear"), 2, "or --clear")
    fails(run("account", "set-sla", "--account", "999", "--clear"), 2, "no account 999")
    assert json_line(run(*base, "--clear")) == {
        "id": account["id"],
        "firstResponseSeconds": None,
        "resolutionSeconds": None,
        "businessHours": None,
    }


def test_the_bench_times_alone_the_summary_parts_its_query_selects() -> None:
    """The resolver-alone timing of the summary computes what the HTTP query selects: with the
    pricing rows too (which read the raw messages) it took 20 s for a year against 0.5 s
    through HTTP."""
    from graphql import FieldNode, OperationDefinitionNode, parse
    from strawberry.utils.str_converters import to_camel_case

    from benchmarks.reports import QUERIES, SUMMARY_QUERY_PARTS, metrics_fragment

    document = parse(QUERIES["summary"] + metrics_fragment(True, True))
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    report = operation.selection_set.selections[0]
    assert isinstance(report, FieldNode) and report.selection_set is not None
    selected = {
        field.name.value
        for field in report.selection_set.selections
        if isinstance(field, FieldNode)
    }
    assert selected == {to_camel_case(part.value) for part in SUMMARY_QUERY_PARTS}
