"""The `wareports` command line: serve, migrate, demo and the admin commands (README: Command
line)."""

import asyncio
import json
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from api import accounts, observability
from ingest import demo as demo_data
from ingest.demo import DemoResult
from models import office_hours
from models.db import create_engine, transaction
from models.errors import BadInput, NotFound
from models.migrate import upgrade_to_head
from models.settings import get_settings

T = TypeVar("T")
DEMO_ACCOUNT = "Demo"
DEMO_OFFICE_HOURS = office_hours.parse_office_hours("mon-fri 09:00-12:30,13:30-18:00")

app = typer.Typer(help="wareports: reporting backend for WhatsApp inbox conversations.")
account_app = typer.Typer(help="Manage accounts.")
channel_app = typer.Typer(help="Manage WhatsApp numbers (channels).")
token_app = typer.Typer(help="Manage API tokens.")
app.add_typer(account_app, name="account")
app.add_typer(channel_app, name="channel")
app.add_typer(token_app, name="token")
button_app = typer.Typer(help="Manage website WhatsApp buttons.")
app.add_typer(button_app, name="button")


def emit(payload: dict[str, Any]) -> None:
    """Print one JSON line, the machine-readable answer of every create/add command."""
    typer.echo(json.dumps(payload, separators=(",", ":")))


@contextmanager
def database_errors() -> Iterator[None]:
    """Bad input and an unusable database end the command with a one-line message, no trace."""
    try:
        yield
    except (BadInput, NotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"error: database {type(exc).__name__}: {reason}", err=True)
        raise typer.Exit(1) from exc


def run_in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one committed transaction; admin errors exit with code 2."""
    settings = get_settings()

    async def runner() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(engine) as session:
                return await work(session)
        finally:
            await engine.dispose()

    with database_errors():
        upgrade_to_head(settings.database_url)
        return asyncio.run(runner())


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    with database_errors():
        upgrade_to_head(get_settings().database_url)
    typer.echo("migrations applied")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Apply migrations, then serve the API (GraphiQL on /graphql)."""
    settings = get_settings()
    with database_errors():
        upgrade_to_head(settings.database_url)
    run_server(host, port, workers)


def run_server(host: str, port: int, workers: int) -> None:
    """uvicorn with its workers; on SIGTERM in-flight requests get 30 s to finish, then the
    lifespan stops the background tasks and closes the pool."""
    import uvicorn

    settings = get_settings()
    with observability.multiprocess_metrics(workers):
        uvicorn.run(
            "api.app:create_served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=observability.logging_config(settings),
            log_level=settings.log_level.lower(),
            access_log=False,  # ours (api.observability) logs requests without query strings
            timeout_graceful_shutdown=30,
            # A worker importing on a busy machine may take more than uvicorn's 5 s to answer
            # its first health check; it would be killed and restarted in a loop.
            timeout_worker_healthcheck=30,
        )


@app.command()
def demo(
    conversations: Annotated[int, typer.Option(min=0, help="How many conversations.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Over how many days.")] = 90,
    seed: Annotated[int, typer.Option(help="The same seed gives the same inbox.")] = 1,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Only fill the database.")] = False,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Create or refresh the "Demo" account (Europe/Paris) with a realistic inbox, print a
    token holding every scope and the GraphiQL address, then serve."""
    address = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    # The demo serves export links and button URLs without any setup: an ephemeral signing key
    # and this address, unless the environment sets them.
    os.environ.setdefault("WAREPORTS_SECRET_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("WAREPORTS_PUBLIC_URL", address)
    get_settings.cache_clear()
    settings = get_settings()
    with database_errors():
        upgrade_to_head(settings.database_url)
        token, result = asyncio.run(build_demo(settings.database_url, conversations, days, seed))
    typer.echo(
        f"Demo account {result.account_id} (Europe/Paris): {result.conversations} conversations, "
        f"{result.messages} messages, {result.contacts} contacts, {result.clicks} widget clicks "
        f"over {days} days (seed {seed}), written in {result.seconds:.1f} s."
    )
    typer.echo(f"Token (every scope, shown once): {token}")
    typer.echo(f"Dashboard: {address}/ (sign in with the token)")
    typer.echo(
        f"GraphiQL: {address}/graphql with the header "
        f'{{"Authorization": "Bearer {token}"}}; try {{ agents {{ email }} }}'
    )
    if not no_serve:
        run_server(host, port, 1)


async def build_demo(url: str, conversations: int, days: int, seed: int) -> tuple[str, DemoResult]:
    """Replace the previous demo account by a new one filled by `ingest.demo.generate`."""
    engine = create_engine(url)
    try:
        for account_id in await demo_data.accounts_named(engine, DEMO_ACCOUNT):
            if not await demo_data.is_demo_account(engine, account_id):
                raise BadInput(
                    "account",
                    f"account {account_id} is named {DEMO_ACCOUNT!r} but was not "
                    "made by `wareports demo`: rename it first, it is left untouched",
                )
            await demo_data.delete_account(engine, account_id)
        async with transaction(engine) as session:
            account = await accounts.create_account(session, DEMO_ACCOUNT, "Europe/Paris")
            assert account.id is not None
            _row, token = await accounts.create_token(
                session, account.id, list(accounts.SCOPES), "demo"
            )
            # Before the rows: the generator measures them (and rebuilds the aggregates once).
            await accounts.set_office_hours(
                session, account.id, DEMO_OFFICE_HOURS, then_remeasure=False
            )
            await accounts.set_service_level(
                session, account.id, 15 * 60, 8 * 3600, then_remeasure=False
            )
        result = await demo_data.generate(engine, account.id, conversations, days, seed)
        return token, result
    finally:
        await engine.dispose()


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option()],
    timezone: str = "UTC",
    auto_close_hours: float = 24.0,
) -> None:
    """Create an account; prints it as one JSON line."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        account = await accounts.create_account(session, name, timezone, auto_close_hours)
        return {
            "id": account.id,
            "name": account.name,
            "timezone": account.timezone,
            "autoCloseHours": account.auto_close_seconds / 3600,
        }

    emit(run_in_transaction(work))


@account_app.command("set-timezone")
def account_set_timezone(
    account: Annotated[int, typer.Option()], timezone: Annotated[str, typer.Option()]
) -> None:
    """Change an account's zone (its default report zone and that of its office hours) and
    rebuild its report aggregates, which count days in that zone, in the same transaction;
    prints it as one JSON line."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await accounts.get_account(session, account, lock=True)
        row.timezone = accounts.check_timezone(timezone)
        session.add(row)
        await session.flush()
        assert row.id is not None
        await accounts.remeasure(session, row.id)
        return {"id": row.id, "name": row.name, "timezone": row.timezone}

    emit(run_in_transaction(work))


@account_app.command("set-office-hours")
def account_set_office_hours(
    account: Annotated[int, typer.Option()],
    schedule: Annotated[
        str | None,
        typer.Option(
            help="Weekly hours in the account's zone: \"mon-fri 09:00-12:30,13:30-18:00; "
            'sat 10:00-14:00" (22:00-06:00 crosses midnight).'
        ),
    ] = None,
    closed: Annotated[str, typer.Option(help="Closed dates: 2026-12-25,2027-01-01.")] = "",
    clear: Annotated[bool, typer.Option("--clear", help="Remove them: always open.")] = False,
) -> None:
    """Set an account's office hours (business-time figures count only them); prints them as
    one JSON line. Bad syntax exits with code 2, naming the part."""
    if clear == (schedule is not None):
        typer.echo("error: give --schedule, or --clear", err=True)
        raise typer.Exit(2)
    with database_errors():
        hours = None if schedule is None else office_hours.parse_office_hours(schedule, closed)

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await accounts.set_office_hours(session, account, hours)
        return {
            "id": row.id,
            "timezone": row.timezone,
            "schedule": None if hours is None else hours.schedule_text(),
            "closedDates": [] if hours is None else sorted(d.isoformat() for d in hours.closed),
        }

    emit(run_in_transaction(work))


@account_app.command("set-sla")
def account_set_sla(
    account: Annotated[int, typer.Option()],
    first_response: Annotated[
        str | None,
        typer.Option(help="First response target from the contact's first message: 15m, 1h."),
    ] = None,
    resolution: Annotated[
        str | None, typer.Option(help="Resolution target from the start to the close: 8h, 2d.")
    ] = None,
    business_hours: Annotated[
        bool,
        typer.Option(
            "--business-hours/--calendar-hours",
            help="Count the targets in office hours (the default) or in calendar time.",
        ),
    ] = True,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the targets.")] = False,
) -> None:
    """Set an account's service-level targets (replacing both) and recompute every
    conversation's outcome; prints them as one JSON line. A bad duration exits with code 2."""
    if clear == (first_response is not None or resolution is not None):
        typer.echo("error: give --first-response and/or --resolution, or --clear", err=True)
        raise typer.Exit(2)
    with database_errors():
        first = (
            None
            if first_response is None
            else accounts.parse_target(first_response, "first-response")
        )
        resolve = None if resolution is None else accounts.parse_target(resolution, "resolution")

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await accounts.set_service_level(session, account, first, resolve, business_hours)
        return {
            "id": account,
            "firstResponseSeconds": None if row is None else row.first_response_seconds,
            "resolutionSeconds": None if row is None else row.resolution_seconds,
            "businessHours": None if row is None else row.business_hours,
        }

    emit(run_in_transaction(work))


@channel_app.command("add")
def channel_add(
    account: Annotated[int, typer.Option()],
    phone_number_id: Annotated[str, typer.Option()],
    display_number: Annotated[str, typer.Option()],
    app_secret: Annotated[str, typer.Option()],
    verify_token: Annotated[str, typer.Option()],
    business_app_agent: Annotated[
        str | None,
        typer.Option(
            help="The agent of the messages sent from the WhatsApp Business app on this number "
            "(default: business-app@<number>)."
        ),
    ] = None,
) -> None:
    """Register a WhatsApp number of an account; prints it as one JSON line (no secrets)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        channel = await accounts.add_channel(
            session,
            account,
            phone_number_id,
            display_number,
            app_secret,
            verify_token,
            business_app_agent,
        )
        return {
            "id": channel.id,
            "accountId": channel.account_id,
            "phoneNumberId": channel.phone_number_id,
            "displayNumber": channel.display_number,
            "businessAppAgent": channel.echo_agent,
        }

    emit(run_in_transaction(work))


@token_app.command("create")
def token_create(
    account: Annotated[int, typer.Option()],
    scopes: Annotated[str, typer.Option(help="Comma-separated: " + ",".join(accounts.SCOPES))],
    name: str | None = None,
) -> None:
    """Create an API token; the token is printed once and stored only as a hash."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        row, token = await accounts.create_token(
            session, account, accounts.parse_scopes(scopes), name
        )
        return {
            "id": row.id,
            "accountId": row.account_id,
            "scopes": row.scopes.split(","),
            "name": row.name,
            "token": token,
        }

    emit(run_in_transaction(work))


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await accounts.revoke_token(session, token_id)
        return {"id": row.id, "revokedAt": row.revoked_at}

    emit(run_in_transaction(work))


@button_app.command("create")
def button_create(
    account: Annotated[int, typer.Option()],
    phone_number_id: Annotated[str, typer.Option(help="The number the button opens.")],
    name: Annotated[str, typer.Option()],
    prefill: Annotated[str, typer.Option(help="Text prefilled in WhatsApp.")] = "",
) -> None:
    """Create a website WhatsApp button; prints it with the URL to link to, as one JSON line."""
    from ingest import buttons

    public_url = get_settings().public_url

    async def work(session: AsyncSession) -> dict[str, Any]:
        button = await buttons.create_button(session, account, phone_number_id, name, prefill)
        return {
            "id": button.id,
            "key": button.key,
            "url": buttons.button_url(public_url, button.key),
            "accountId": button.account_id,
            "name": button.name,
            "prefill": button.prefill,
        }

    emit(run_in_transaction(work))


@app.command()
def autoclose(
    once: Annotated[bool, typer.Option("--once", help="Run once and exit.")] = False,
) -> None:
    """Close idle conversations at last message + the account's delay; without --once, again
    every WAREPORTS_AUTOCLOSE_INTERVAL_SECONDS (safe next to `serve`, which does the same)."""
    from ingest.autoclose import close_due

    settings = get_settings()

    async def runner() -> None:
        engine = create_engine(settings.database_url)
        try:
            while True:
                emit({"closed": await close_due(engine)})
                if once:
                    return
                await asyncio.sleep(settings.autoclose_interval_seconds)
        finally:
            await engine.dispose()

    upgrade_to_head(settings.database_url)
    asyncio.run(runner())


@app.command()
def bench(
    conversations: Annotated[int, typer.Option(min=1, help="Size of the account.")] = 1_000_000,
    days: Annotated[int, typer.Option(min=365, max=3660, help="Over how many days.")] = 365,
    database_url: Annotated[
        str | None, typer.Option(help="Default: SQLite ./bench-data/bench.db.")
    ] = None,
    reuse: Annotated[
        bool, typer.Option(help="Reuse the Benchmark account when it has that size.")
    ] = True,
    repeat: Annotated[int, typer.Option(min=1, help="Timed runs per case.")] = 7,
    warmup: Annotated[bool, typer.Option(help="Run each case once, untimed, first.")] = True,
    distinct_contacts: Annotated[
        bool, typer.Option(help="Select Metrics.distinctContacts in the report queries.")
    ] = True,
    percentiles: Annotated[
        bool, typer.Option(help="Select the percentiles (medians, p90) in the report queries.")
    ] = True,
    aggregates: Annotated[
        bool,
        typer.Option(help="Let reports read the aggregates; --no-aggregates: raw rows (before)."),
    ] = True,
    seed: int = 1,
    reports: Annotated[str, typer.Option(help="Comma-separated.")] = (
        "summary,heatmap,agents,tags,widget"
    ),
    details: Annotated[bool, typer.Option(help="Time 50- and 500-row details pages.")] = True,
    export: Annotated[bool, typer.Option(help="Time a year of CSV export.")] = True,
    markdown: Annotated[bool, typer.Option(help="Also print the table as Markdown.")] = False,
) -> None:
    """Generate (or reuse) a large account and time every report through HTTP + GraphQL and
    through its resolver alone; prints medians and p95 (exit code 1 when a target is missed)."""
    try:
        from benchmarks import reports as benchmark
    except ImportError as missing:  # httpx, psutil: the `bench` extra
        typer.echo(f"wareports bench needs pip install 'wareports[bench]' ({missing})", err=True)
        raise typer.Exit(2) from missing

    options = benchmark.Options(
        database_url=database_url or benchmark.default_url(),
        conversations=conversations,
        days=days,
        seed=seed,
        repeat=repeat,
        warmup=warmup,
        distinct_contacts=distinct_contacts,
        percentiles=percentiles,
        reuse=reuse,
        aggregates=aggregates,
        reports=tuple(name.strip() for name in reports.split(",") if name.strip()),
        details=details,
        export=export,
        markdown=markdown,
    )
    with database_errors():
        met = benchmark.run(options)
    raise typer.Exit(0 if met else 1)


@app.command("rebuild-aggregates")
def rebuild_aggregates(
    account: Annotated[int | None, typer.Option(help="One account (default: every one).")] = None,
) -> None:
    """Recompute report aggregates from the raw rows (after an upgrade, a change of zone or a
    bulk import); one transaction and one JSON line per account."""
    from ingest import aggregates

    settings = get_settings()

    async def runner() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(engine) as session:
                ids = [account] if account is not None else await accounts.account_ids(session)
            for account_id in ids:
                began = time.perf_counter()
                async with transaction(engine) as session:
                    await accounts.get_account(session, account_id)
                    await aggregates.rebuild_aggregates(session, account_id)
                await aggregates.analyze_aggregates(engine)
                emit({"account": account_id, "seconds": round(time.perf_counter() - began, 3)})
        finally:
            await engine.dispose()

    with database_errors():
        upgrade_to_head(settings.database_url)
        asyncio.run(runner())


@app.command("citus-plan")
def citus_plan() -> None:
    """Print the SQL that distributes this schema on Citus (by account, colocated; the small
    tables read before the account is known as reference tables), generated from the models.
    Exits 1, naming each obstacle on stderr, while the schema breaks a rule Citus needs."""
    from sqlmodel import SQLModel

    from models import distribution

    typer.echo(distribution.citus_plan(SQLModel.metadata), nl=False)
    obstacles = distribution.violations(SQLModel.metadata)
    for obstacle in obstacles:
        typer.echo(f"tenant-key rule broken: {obstacle}", err=True)
    raise typer.Exit(1 if obstacles else 0)


def _quiet_closed_loop(args: threading.ExceptHookArgs) -> None:
    """aiosqlite's worker thread may answer a failed connect after `asyncio.run` closed its
    loop; that race prints a traceback after our one-line error. Hide only that one."""
    closed_loop = isinstance(args.exc_value, RuntimeError) and "loop is closed" in str(
        args.exc_value
    )
    if not (closed_loop and args.thread and "_connection_worker_thread" in args.thread.name):
        threading.__excepthook__(args)


def main() -> None:
    threading.excepthook = _quiet_closed_loop
    app()
