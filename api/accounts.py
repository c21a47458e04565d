"""Accounts, channels and API tokens: what `wareports account|channel|token` manage."""

import hashlib
import re
import secrets

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import aggregates, service_levels
from ingest.contacts import normalize_email
from ingest.transactions import forget_account_settings
from models import Account, ApiToken, Channel
from models.db import now
from models.errors import BadInput, NotFound
from models.office_hours import OfficeHours
from models.principal import Principal
from models.tables import OfficeHoursRow, ServiceLevel
from resolvers.buckets import require_zone

SCOPES = ("reports:read", "reports:export", "ingest:write", "admin")
TOKEN_PREFIX = "wr_"  # noqa: S105  (a prefix, not a secret)
LAST_USED_RESOLUTION_SECONDS = 60  # last_used_at is refreshed at most once a minute per token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_timezone(zone: str, field: str = "timezone") -> str:
    return require_zone(zone, field)


def parse_scopes(text: str) -> list[str]:
    scopes = [scope.strip() for scope in text.split(",") if scope.strip()]
    if not scopes:
        raise BadInput("scopes", "at least one scope is needed")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadInput(
            "scopes", f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}"
        )
    return sorted(set(scopes), key=SCOPES.index)


async def create_account(
    session: AsyncSession, name: str, timezone: str = "UTC", auto_close_hours: float = 24
) -> Account:
    if not name.strip():
        raise BadInput("name", "must not be empty")
    if auto_close_hours <= 0:
        raise BadInput("auto-close-hours", "must be positive")
    account = Account(
        name=name.strip(),
        timezone=check_timezone(timezone),
        auto_close_seconds=round(auto_close_hours * 3600),
        created_at=now(),
    )
    session.add(account)
    await session.flush()
    assert account.id is not None
    # A new account has no rows: its (empty) report aggregates are exact from the start.
    await aggregates.start_aggregates(session, account.id, account.timezone)
    return account


async def get_account(session: AsyncSession, account_id: int, lock: bool = False) -> Account:
    """The account; with `lock`, held FOR UPDATE until the transaction ends (a change of its
    settings: ingestion, which reads them FOR KEY SHARE, waits until it commits)."""
    account = await session.get(Account, account_id, with_for_update=lock)
    if account is None:
        raise NotFound(f"no account {account_id}")
    return account


async def account_ids(session: AsyncSession) -> list[int]:
    """Every account's id, ascending."""
    found = await session.scalars(select(Account.id).order_by(Account.id))  # type: ignore[arg-type]
    return [account_id for account_id in found.all() if account_id is not None]


async def add_channel(
    session: AsyncSession,
    account_id: int,
    phone_number_id: str,
    display_number: str,
    app_secret: str,
    verify_token: str,
    business_app_agent: str | None = None,
) -> Channel:
    await get_account(session, account_id)
    existing = await session.scalar(
        select(Channel.id).where(Channel.phone_number_id == phone_number_id)  # type: ignore[arg-type]
    )
    if existing is not None:
        raise BadInput("phone-number-id", f"{phone_number_id!r} is already registered")
    for field, value in (("app-secret", app_secret), ("verify-token", verify_token)):
        if not value:
            raise BadInput(field, "must not be empty")
    agent = None
    if business_app_agent is not None:
        try:  # the rule every agent e-mail of the events meets
            agent = normalize_email(business_app_agent)
        except ValueError as exc:
            raise BadInput(
                "business-app-agent", f"{business_app_agent!r} is not an e-mail address"
            ) from exc
    channel = Channel(
        account_id=account_id,
        phone_number_id=phone_number_id,
        display_number=display_number,
        app_secret=app_secret,
        verify_token=verify_token,
        business_app_agent=agent,
    )
    session.add(channel)
    await session.flush()
    return channel


async def create_token(
    session: AsyncSession, account_id: int, scopes: list[str], name: str | None = None
) -> tuple[ApiToken, str]:
    """A new token row and the token itself, which is shown once and stored only as a hash."""
    await get_account(session, account_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        account_id=account_id,
        name=name,
        token_hash=hash_token(token),
        scopes=",".join(scopes),
        created_at=now(),
    )
    session.add(row)
    await session.flush()
    return row, token


async def revoke_token(session: AsyncSession, token_id: int) -> ApiToken:
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now()
    await session.flush()
    return row


def use_to_record(principal: Principal) -> bool:
    """Whether the token's `last_used_at` is due (it is refreshed at most once a minute)."""
    last = principal.last_used_at
    return last is None or last < now() - LAST_USED_RESOLUTION_SECONDS


async def record_use(session: AsyncSession, principal: Principal) -> None:
    """Sets the token's `last_used_at` to now, in the caller's transaction (the ingestion
    writer's: a write of its own would wait for the writer's lock on SQLite)."""
    await session.execute(
        update(ApiToken).where(ApiToken.id == principal.token_id).values(last_used_at=now())  # type: ignore[arg-type]
    )


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """The principal of a live token, or None. The lookup is by hash: equal hashes are the
    only comparison made, so the token's bytes never meet a short-circuiting compare."""
    digest = hash_token(token)
    row = (
        await session.execute(
            select(ApiToken, Account.timezone)
            .join(Account, Account.id == ApiToken.account_id)  # type: ignore[arg-type]
            .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))  # type: ignore[union-attr,arg-type]
        )
    ).first()
    if row is None:
        return None
    api_token, timezone = row
    if not secrets.compare_digest(api_token.token_hash, digest):
        return None
    assert api_token.id is not None
    principal = Principal(
        account_id=api_token.account_id,
        token_id=api_token.id,
        scopes=frozenset(api_token.scopes.split(",")),
        timezone=timezone,
        last_used_at=api_token.last_used_at,
    )
    return principal


async def set_office_hours(
    session: AsyncSession,
    account_id: int,
    hours: OfficeHours | None,
    *,
    then_remeasure: bool = True,
) -> Account:
    """Replace an account's office hours (None: none, always open), then recompute what
    depends on them (`remeasure`; the caller does it when it changes more first)."""
    account = await get_account(session, account_id, lock=True)
    existing = await session.get(OfficeHoursRow, account_id)
    if hours is None:
        if existing is not None:
            await session.delete(existing)
    else:
        row = existing or OfficeHoursRow(account_id=account_id, schedule="")
        row.schedule, row.closed_dates = hours.schedule_text(), hours.closed_text()
        session.add(row)
    await session.flush()
    if then_remeasure:
        await remeasure(session, account_id)
    return account


_DURATION = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_target(text: str, field: str) -> int:
    """A service-level target: `15m`, `8h`, `1h30m`, `2d`, `90s` (units d h m s, largest
    first); its seconds, at least 1."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    units = [unit for _, unit in parts]
    if (
        not parts
        or "".join(f"{n}{u}" for n, u in parts) != cleaned
        or units != sorted(set(units), key="dhms".index)
    ):
        raise BadInput(field, f"{text!r} is not a duration like 15m, 8h, 1h30m or 2d")
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds < 1:
        raise BadInput(field, f"{text!r}: a target must be at least 1 second")
    return seconds


async def set_service_level(
    session: AsyncSession,
    account_id: int,
    first_response: int | None,
    resolution: int | None,
    business_hours: bool = True,
    *,
    then_remeasure: bool = True,
) -> ServiceLevel | None:
    """Replace an account's service-level targets (both None: none), then recompute what
    depends on them (`remeasure`)."""
    await get_account(session, account_id, lock=True)
    row = await session.get(ServiceLevel, account_id)
    if first_response is None and resolution is None:
        if row is not None:
            await session.delete(row)
        row = None
    else:
        row = row or ServiceLevel(account_id=account_id)
        row.first_response_seconds, row.resolution_seconds = first_response, resolution
        row.business_hours = business_hours
        session.add(row)
    await session.flush()
    if then_remeasure:
        await remeasure(session, account_id)
    return row


async def remeasure(session: AsyncSession, account_id: int) -> None:
    """After an account's office hours, targets or zone changed: recompute the business-time
    figures and service-level outcomes of its conversations, then rebuild its aggregates."""
    forget_account_settings(session, account_id)
    await service_levels.recompute_account(session, account_id)
    await aggregates.rebuild_aggregates(session, account_id)
