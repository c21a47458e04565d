"""Handing validated ingestion work to the process's group commit writer (`ingest.writer`)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.accounts import record_use
from api.observability import current_metrics
from ingest.writer import Bulk, GroupWriter, WriterBusy
from models.principal import Principal

T = TypeVar("T")
log = logging.getLogger("wareports.auth")


async def store(
    request: Request,
    work: Callable[[AsyncSession], Awaitable[T]],
    items: int,
    accounts: Iterable[int],
    bulk: Bulk | None = None,
) -> T:
    """Run `work` (`items` items written to `accounts`) in the writer's next transaction;
    returns once it is committed. Raises `WriterBusy` when the queue is full (see `busy`)."""
    writer: GroupWriter = request.app.state.writer
    return await writer.submit(work, items, accounts, bulk)


def busy(error: WriterBusy) -> JSONResponse:
    """503 with Retry-After: the writer's queue is full; nothing was stored."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.ingest_refused_busy.inc()
    return JSONResponse(
        {"errors": [{"message": f"busy: {error}; retry later", "code": "BUSY"}]},
        status_code=503,
        headers={"Retry-After": str(error.retry_after)},
    )


def record_use_later(request: Request, principal: Principal) -> None:
    """Sets the token's `last_used_at` in the writer's next transaction, without making the
    request wait for it: a write of its own would wait for the writer's lock on SQLite (up to
    the busy timeout while ingestion keeps it busy). Best effort: a token that is valid is not
    refused because this bookkeeping could not be written. A burst of requests with the same
    token, all reading it as due before the first record commits, records it once."""
    token_id = principal.token_id
    # The app's records in progress, by token id (strong references until each is done).
    recording: dict[int, asyncio.Task[None]] = request.app.state.recording_use
    if token_id in recording:
        return
    writer: GroupWriter = request.app.state.writer

    async def work(session: AsyncSession) -> None:
        await record_use(session, principal)

    async def submit() -> None:
        try:
            await writer.submit(work, accounts=[principal.account_id], bookkeeping=True)
        except Exception:
            log.warning("could not record the use of token %s", token_id, exc_info=True)
        finally:
            del recording[token_id]

    recording[token_id] = asyncio.create_task(submit(), name="record-token-use")
