"""One ingestion transaction, run again once when a concurrent writer won a race against it."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Select, bindparam, func, select, true
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Account, Channel
from models.db import transaction
from models.tables import AggregateState, OfficeHoursRow, ServiceLevel

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL: serialization failure, deadlock detected.
RETRYABLE_SQLSTATES = {"40001", "40P01"}

_writer_locks: WeakKeyDictionary[Engine, asyncio.Lock] = WeakKeyDictionary()


@asynccontextmanager
async def sqlite_writer_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """On SQLite, let this process's writers take turns on an asyncio lock before BEGIN IMMEDIATE.

    SQLite has one writer at a time and its busy handler polls (up to every 100 ms): many
    writers of one process polling for the lock hand it over slowly and can starve one of them
    past the busy timeout. Queued on a lock instead, the next writer starts as soon as the
    previous commits; the busy timeout is left for other processes. PostgreSQL needs no turn.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _writer_locks.setdefault(engine.sync_engine, asyncio.Lock())
    async with lock:
        yield


def remembered(session: AsyncSession, name: str) -> dict[Any, Any]:
    """A dict kept in `session.info` for the session's current transaction only: what a
    transaction reads once (an account's settings, agent and tag ids) and every
    unit of a group transaction then reuses. A new transaction starts with an empty one."""
    memo: dict[Any, Any] = session.info.setdefault(
        (name, id(session.sync_session.get_transaction())), {}
    )
    return memo


@dataclass(frozen=True)
class AccountSettings:
    """What ingestion reads of an account, once per transaction (`account_settings`)."""

    auto_close_seconds: int
    channels: int
    first_channel_id: int | None
    aggregate_zone: str | None  # None: the aggregates are not built
    timezone: str  # the account's own: office hours are in it
    office_hours: str | None  # the schedule (`models.office_hours`); None: always open
    closed_dates: str | None
    first_response_target: int | None  # service levels (`ingest.service_levels`), seconds
    resolution_target: int | None
    targets_in_business_hours: bool | None


async def account_settings(session: AsyncSession, account_id: int) -> AccountSettings:
    """The account's auto-close delay, channels, aggregate zone, office hours and service
    levels, in one statement, read once per transaction. The account row is held FOR KEY
    SHARE (what a foreign key check takes anyway), so a rebuild of the aggregates or a change
    of settings, which hold it FOR UPDATE, never runs between our reading the settings and our
    writing what they decide."""
    known = remembered(session, "account settings")
    if account_id not in known:
        row = (await session.execute(SETTINGS, {"account_id": account_id})).first()
        if row is None:
            raise LookupError(f"no account {account_id}")
        known[account_id] = AccountSettings(*row)
    found: AccountSettings = known[account_id]
    return found


def forget_account_settings(session: AsyncSession, account_id: int) -> None:
    """After the transaction changed them (a rebuild of the aggregates)."""
    remembered(session, "account settings").pop(account_id, None)


def _settings_statement() -> Select[Any]:
    account, channel = Account.__table__, Channel.__table__  # type: ignore[attr-defined]
    state = AggregateState.__table__  # type: ignore[attr-defined]
    hours = OfficeHoursRow.__table__  # type: ignore[attr-defined]
    levels = ServiceLevel.__table__  # type: ignore[attr-defined]
    channels = select(channel.c.id).where(channel.c.account_id == account.c.id)
    return (
        select(
            account.c.auto_close_seconds,
            channels.with_only_columns(func.count()).scalar_subquery(),
            channels.with_only_columns(func.min(channel.c.id)).scalar_subquery(),
            state.c.timezone,
            account.c.timezone,
            hours.c.schedule,
            hours.c.closed_dates,
            levels.c.first_response_seconds,
            levels.c.resolution_seconds,
            levels.c.business_hours,
        )
        .select_from(
            account.outerjoin(state, state.c.account_id == account.c.id)
            .outerjoin(hours, hours.c.account_id == account.c.id)
            .outerjoin(levels, levels.c.account_id == account.c.id)
        )
        .where(account.c.id == bindparam("account_id"))
        .with_for_update(read=True, key_share=True, of=account)
    )


SETTINGS = _settings_statement()

LOCK_NAMESPACE = 0x5752  # "WR": the advisory locks' first key, the account id the second


def _locked_settings_statement() -> Select[Any]:
    """The account's ingestion lock, then its settings (`SETTINGS`), in one round trip: the
    lateral subquery is scanned after the lock is granted."""
    lock = select(
        func.pg_advisory_xact_lock(bindparam("namespace"), bindparam("account_id")).label("locked")
    ).subquery("ingestion_lock")
    settings = SETTINGS.lateral("settings")
    return select(lock.c.locked, *settings.c).select_from(lock.outerjoin(settings, true()))


LOCKED_SETTINGS = _locked_settings_statement()


async def lock_account(session: AsyncSession, account_id: int) -> None:
    """PostgreSQL: take the account's ingestion lock (a transaction-level advisory lock, see
    `ingest.writer`) and read its settings for the transaction (`account_settings`) at once."""
    bound = {"namespace": LOCK_NAMESPACE, "account_id": account_id}
    row = (await session.execute(LOCKED_SETTINGS, bound)).one()
    if row[1] is not None:  # else no such account: `account_settings` says so if asked
        remembered(session, "account settings")[account_id] = AccountSettings(*row[1:])


def lost_a_race(error: DBAPIError) -> bool:
    """A unique violation (another writer inserted the same key first), a deadlock victim, or
    a connection lost (the database restarted; the pool then connects anew)."""
    if isinstance(error, IntegrityError) or error.connection_invalidated:
        return True
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def write(engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction; after a lost race (or connection), run it once
    more from scratch (its first attempt was rolled back, so nothing is applied twice)."""
    try:
        return await _once(engine, work)
    except DBAPIError as error:
        if not lost_a_race(error):
            raise
        log.info("ingestion transaction lost a race (%s); retrying once", type(error).__name__)
    return await _once(engine, work)


async def _once(engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with sqlite_writer_turn(engine), transaction(engine) as session:
        return await work(session)
