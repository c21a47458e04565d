"""One ingestion transaction, run again once when a concurrent writer won a race against it."""

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL: serialization failure, deadlock detected.
RETRYABLE_SQLSTATES = {"40001", "40P01"}


def lost_a_race(error: DBAPIError) -> bool:
    """A unique violation (another writer inserted the same key first) or a deadlock victim."""
    if isinstance(error, IntegrityError):
        return True
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def write(engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction; after a lost race, run it once more from scratch
    (its first attempt was rolled back, so nothing is applied twice)."""
    try:
        async with transaction(engine) as session:
            return await work(session)
    except DBAPIError as error:
        if not lost_a_race(error):
            raise
        log.info("ingestion transaction lost a race (%s); retrying once", type(error).__name__)
    async with transaction(engine) as session:
        return await work(session)
