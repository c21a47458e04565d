"""Handing validated ingestion work to the process's group commit writer (`ingest.writer`)."""

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.observability import current_metrics
from ingest.writer import Bulk, GroupWriter, WriterBusy

T = TypeVar("T")


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
