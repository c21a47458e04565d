"""The auto-close job: close each account's idle conversations at last message + delay, mark
breached the conversations whose service-level deadline passed while they waited
(`ingest.service_levels`) and those whose 24-hour window ran out (`ingest.window`), and forget
the pending statuses whose message never came (`ingest.statuses.prune_pending`)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import aggregates, changes, conversations, service_levels, statuses, window
from ingest.transactions import sqlite_writer_turn
from models import Account
from models.db import session_factory, transaction

log = logging.getLogger(__name__)


Submit = Callable[[Callable[[AsyncSession], Awaitable[Any]], int, list[int]], Awaitable[Any]]


async def close_due(
    engine: AsyncEngine, now: int | None = None, submit: Submit | None = None
) -> int:
    """Close every conversation whose last message + its account's delay has passed; returns how
    many were closed. Idempotent, and safe to run from several processes at once: each account
    is one conditional UPDATE (see conversations.close_overdue). With `submit` (the group commit
    writer's), each account's pass joins the writer's transactions."""
    async with session_factory(engine)() as session:
        account_ids = (await session.scalars(select(Account.id).order_by(col(Account.id)))).all()
    closed = 0
    for account_id in account_ids:
        assert account_id is not None

        async def work(session: AsyncSession, account_id: int = account_id) -> int:
            return await pass_over(session, account_id, now)

        if submit is not None:
            closed += await submit(work, 1, [account_id])
            continue
        async with sqlite_writer_turn(engine), transaction(engine) as session:
            closed += await work(session)
    return closed


async def pass_over(session: AsyncSession, account_id: int, now: int | None = None) -> int:
    """One account's pass, in the caller's transaction; returns how many it closed."""
    clock = await conversations.clock_of(session, account_id, now)
    overdue = await conversations.close_overdue(session, clock, until=clock.now, skip_locked=True)
    # Deadlines and 24-hour windows that ran out while conversations waited: one sync brings
    # them (and their aggregates) up to date.
    waited = await service_levels.overdue(session, account_id, clock.now)
    waited += await window.missed_since(session, account_id, clock.now)
    await aggregates.sync_conversations(session, account_id, waited, clock.now)
    forgotten = await statuses.prune_pending(session, account_id, clock.now)
    forgotten += await changes.prune_waiting(
        session, account_id, clock.now - statuses.PENDING_TTL_SECONDS
    )
    if forgotten:
        log.info(
            "account %s: forgot %d pending status(es) and change(s) past 7 days",
            account_id,
            forgotten,
        )
    return len(overdue)


async def run_periodically(
    engine: AsyncEngine,
    interval_seconds: float,
    on_run: Callable[[str, int], None] | None = None,
    submit: Submit | None = None,
) -> None:
    """Run `close_due` every `interval_seconds` until cancelled; a failed run is logged and the
    next one tries again. The first run waits one interval, off the start-up path. `on_run`
    hears each pass's outcome (`ok` or `failed`) and how many it closed."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            closed = await close_due(engine, submit=submit)
            if closed:
                log.info("auto-closed %d conversation(s)", closed)
            if on_run is not None:
                on_run("ok", closed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("auto-close run failed; retrying in %s s", interval_seconds)
            if on_run is not None:
                on_run("failed", 0)
