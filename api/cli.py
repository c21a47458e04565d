"""The `wareports` command line: serve, migrate, demo and the admin commands of API.md §5."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from api import accounts
from api.settings import get_settings
from models.db import create_engine, transaction
from models.errors import BadInput, NotFound
from models.migrate import upgrade_to_head

T = TypeVar("T")

app = typer.Typer(help="wareports: reporting backend for WhatsApp inbox conversations.")
account_app = typer.Typer(help="Manage accounts.")
channel_app = typer.Typer(help="Manage WhatsApp numbers (channels).")
token_app = typer.Typer(help="Manage API tokens.")
app.add_typer(account_app, name="account")
app.add_typer(channel_app, name="channel")
app.add_typer(token_app, name="token")


def emit(payload: dict[str, Any]) -> None:
    """Print one JSON line, the machine-readable answer of every create/add command."""
    typer.echo(json.dumps(payload, separators=(",", ":")))


def run_in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one committed transaction; admin errors exit with code 2."""
    settings = get_settings()
    upgrade_to_head(settings.database_url)

    async def runner() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(engine) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(runner())
    except (BadInput, NotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    upgrade_to_head(get_settings().database_url)
    typer.echo("migrations applied")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Apply migrations, then serve the API (GraphiQL on /graphql)."""
    import uvicorn

    settings = get_settings()
    upgrade_to_head(settings.database_url)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
    )


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


@channel_app.command("add")
def channel_add(
    account: Annotated[int, typer.Option()],
    phone_number_id: Annotated[str, typer.Option()],
    display_number: Annotated[str, typer.Option()],
    app_secret: Annotated[str, typer.Option()],
    verify_token: Annotated[str, typer.Option()],
) -> None:
    """Register a WhatsApp number of an account; prints it as one JSON line (no secrets)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        channel = await accounts.add_channel(
            session, account, phone_number_id, display_number, app_secret, verify_token
        )
        return {
            "id": channel.id,
            "accountId": channel.account_id,
            "phoneNumberId": channel.phone_number_id,
            "displayNumber": channel.display_number,
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


def main() -> None:
    app()
