"""PostgreSQL planner statistics kept up with ingestion.

The writer's statements look rows up by key among an account's (`account_id = $1 AND wamid =
ANY($2)`): with statistics that lag far behind a table's size (a new database taking a
broadcast, or a server whose autovacuum is off or behind), the planner guesses that an account
holds a handful of rows and walks the account's index instead of the key's, and a transaction
costs as much as the account is large. So the writer analyzes the tables it fills itself, in
the background: after `first` items, then each time what it committed has doubled, until
`DOUBLING_UNTIL` items, then each time it has grown by a fifth: a handful of ANALYZEs while the
tables grow from nothing, then rarely. ANALYZE never blocks writes. SQLite has no statistics to
keep.

The first ANALYZE comes early because, with keys that lead with `account_id`, a plan made while
an account looked empty scans the account's rows for each key it looks up (a cost that grows
with every row stored before the next ANALYZE: with the first one after 1,000 items, the first
thousand webhooks of a new database took 30 s on PostgreSQL, then 1 ms each once analyzed).
"""

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

FIRST_ANALYZE_ITEMS = 100
DOUBLING_UNTIL = 10_000
GROWTH = 0.2
# The tables ingestion reads by key while it writes them.
TABLES = (
    "contact",
    "conversation",
    "message",
    "pending_status",
    "ingested_event",
    "conversation_tag",
    "aggregated_conversation",
    "aggregated_conversation_tag",
)
ANALYZE = text(f"ANALYZE {', '.join(TABLES)}")


class PlannerStatistics:
    def __init__(self, engine: AsyncEngine, first: int = FIRST_ANALYZE_ITEMS) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self.threshold = first
        self.first = first
        self.since = 0
        self.total = 0
        self.task: asyncio.Task[None] | None = None
        self.runs = 0

    def committed(self, items: int) -> None:
        """`items` were committed: analyze in the background if they have grown enough."""
        if not self.enabled:
            return
        self.since += items
        self.total += items
        if self.since < self.threshold or (self.task is not None and not self.task.done()):
            return
        self.since = 0
        growth = 1.0 if self.total < DOUBLING_UNTIL else GROWTH
        self.threshold = max(self.first, int(self.total * growth))
        self.task = asyncio.create_task(self._analyze(), name="analyze")

    async def _analyze(self) -> None:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(ANALYZE)
                await connection.commit()
            self.runs += 1
        except Exception:
            log.warning("could not refresh the planner statistics", exc_info=True)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
