"""Group commit: one writer per process folds every waiting ingestion request into one transaction.

A request is validated on its own first (bad input never reaches the writer), then handed over
as a unit of work (`submit`) and awaited: it is answered only once the transaction holding it has
committed, so read-your-writes holds. The writer takes whatever is queued, up to `max_group`
items (webhook messages and statuses, events, clicks), runs each unit in turn in one session,
brings the report aggregates of every touched conversation up to date once (`ingest.aggregates`
deferred sync: one delta statement per aggregate table per transaction), and commits. Units are
applied in arrival order, each seeing the ones before it, exactly as if each had committed alone.

If a shared transaction fails (one unit refuses its input, or loses a race to another process),
it is rolled back and its units run again one at a time, so the failing one gets its own error
and the others still commit. A unit alone that loses a race runs once more from scratch
(`ingest.transactions.write`).

Fairness between accounts: a large unit (a big event batch) next in the queue lets the small
units of other accounts behind it go first; on PostgreSQL a large group folds aside, in a
transaction of its own, while the small units of other accounts keep folding beside it.

The queue is bounded: when `max_queued` items wait, `submit` raises `WriterBusy` at once and the
route answers 503 with `Retry-After` (Meta and well-behaved clients retry).
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import aggregates, statuses
from ingest.statistics import PlannerStatistics
from ingest.transactions import lock_account, sqlite_writer_turn, write
from models.db import transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]

DEFAULT_MAX_QUEUED = 5_000
DEFAULT_MAX_GROUP = 1_000
LARGE_UNIT = 100  # items: a unit this large lets the small units of other accounts go first
GATHER_PASSES = 8  # at most this many event loop turns for arriving requests, per transaction
COMMIT_DELAY_SECONDS = 0.002  # see `GroupWriter._commit_delay`
COMMIT_SIBLINGS = 4


class WriterBusy(Exception):
    """The queue is full: come back later (HTTP 503 with Retry-After)."""

    retry_after = 1


@dataclass(frozen=True)
class Fold:
    """What one transaction held, for the metrics: units, items, seconds, outcome."""

    units: int
    items: int
    seconds: float
    outcome: str  # committed | split (rolled back, then run one at a time)


Bulk = tuple[Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]], Any]


@dataclass(eq=False)  # a unit is itself: the queue removes it by identity
class _Unit:
    work: Work
    items: int
    accounts: frozenset[int]
    future: asyncio.Future[Any]
    bulk: Bulk | None = None


@dataclass
class GroupWriter:
    engine: AsyncEngine
    max_queued: int = DEFAULT_MAX_QUEUED
    max_group: int = DEFAULT_MAX_GROUP
    on_fold: Callable[[Fold], None] | None = None
    commit_delay: float = COMMIT_DELAY_SECONDS
    commit_siblings: int = COMMIT_SIBLINGS
    _queue: deque[_Unit] = field(default_factory=deque)
    _queued_items: int = 0
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _closing: bool = False
    _holds: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _large: asyncio.Task[None] | None = None  # PostgreSQL: a large group folding aside
    _large_accounts: set[int] = field(default_factory=set)
    _last_units: int = 0
    statistics: PlannerStatistics = field(init=False)
    _lanes: bool = field(init=False)

    def __post_init__(self) -> None:
        self.statistics = PlannerStatistics(self.engine)
        # Two transactions at once need two connections and per-account locks: PostgreSQL.
        self._lanes = self.engine.dialect.name == "postgresql"

    @property
    def depth(self) -> int:
        """Items waiting for the writer (not counting the transaction in progress)."""
        return self._queued_items

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ingestion-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.statistics.close()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """While inside, the writer starts no transaction (the one in progress finishes first):
        requests queue up, and are folded together when it is left (maintenance, tests)."""
        self._holds += 1
        try:
            if self._task is not None:
                await self._idle.wait()
            yield
        finally:
            self._holds -= 1
            self._wakeup.set()

    async def submit(
        self,
        work: Callable[[AsyncSession], Awaitable[T]],
        items: int = 1,
        accounts: Iterable[int] = (),
        bulk: Bulk | None = None,
        bookkeeping: bool = False,
    ) -> T:
        """Run `work` in the next group transaction; returns its result once committed.
        `accounts`: the accounts it writes to (locked first on PostgreSQL, see `_lock`).
        `bulk`: `(fold, payload)`, where `fold(session, payloads)` does for consecutive units of
        the same `fold` what their `work` would do one after the other, returning each one's
        result (webhook deliveries: `ingest.whatsapp.store_many`).
        `bookkeeping`: a small write that is not ingestion (a token's last use): it rides along
        with the next transaction and counts as no item (queue depth, `Fold`, the 503 limit)."""
        items = 0 if bookkeeping else max(1, items)
        if self._closing:
            raise WriterBusy("the server is shutting down")
        # A unit larger than the whole queue is still taken when the queue is empty.
        if self._queue and items and self._queued_items + items > self.max_queued:
            raise WriterBusy(f"{self._queued_items} items are waiting to be stored")
        self.start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Unit(work, items, frozenset(accounts), future, bulk))
        self._queued_items += items
        self._wakeup.set()
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            if self._large is not None and self._large.done():
                self._large = None
            held = self._holds and not self._closing
            if not self._queue or held:
                if self._large is None:
                    if self._closing and not self._queue:
                        return
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()  # a submit, a release, or the large fold's end
                continue
            self._idle.clear()
            await self._gather()
            if self._large is not None:
                group = self._overtaking(self._large_accounts, list(self._queue))
                if not group:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                self._remove(group)
            else:
                group = self._take()
                if self._lanes and sum(unit.items for unit in group) >= LARGE_UNIT:
                    accounts = set().union(*(unit.accounts for unit in group))
                    if accounts and all(unit.accounts for unit in group):
                        self._large_accounts = accounts
                        self._large = asyncio.create_task(self._fold_aside(group))
                        continue
            self._last_units = sum(1 for unit in group if unit.items < LARGE_UNIT)
            await self._guarded_fold(group)

    async def _guarded_fold(self, group: list[_Unit]) -> None:
        try:
            await self._fold(group)
        except Exception as error:
            log.exception("ingestion writer failed")
            for unit in group:
                _settle(unit, error=error)

    async def _fold_aside(self, group: list[_Unit]) -> None:
        """PostgreSQL: a large group folds in a transaction of its own while the main lane
        folds the small units of other accounts that arrive meanwhile (`_overtaking`): their
        advisory locks differ, so neither waits for the other."""
        try:
            await self._guarded_fold(group)
        finally:
            self._wakeup.set()

    async def _gather(self) -> None:
        """Let the event loop run before taking a group: requests that arrived while the last
        transaction ran (on SQLite it holds the loop, see `models.inline_sqlite`) are read,
        validated and queued, so they join this group instead of waiting for the next one."""
        queued = -1
        for _ in range(GATHER_PASSES):
            if len(self._queue) == queued or self._queued_items >= self.max_group:
                break
            queued = len(self._queue)
            await asyncio.sleep(0)
        await self._commit_delay()

    async def _commit_delay(self) -> None:
        """Under concurrent load (the last group held `commit_siblings` small units or more),
        wait up to `commit_delay` for the queue to refill to that many: the clients just
        answered are sending their next requests, and one transaction for all of them costs its
        fixed part (begin, look-ups, the aggregate deltas, commit: about 5 ms) once instead of
        twice. PostgreSQL's `commit_delay` and `commit_siblings` do the same for its WAL
        flushes. A client alone (groups smaller than `commit_siblings`) never waits, nor does a
        large batch (a group of its own, `_in_order`); after a burst, the next group waits once."""
        if self._closing or self._last_units < self.commit_siblings or not self.commit_delay:
            return
        deadline = time.monotonic() + self.commit_delay
        while len(self._queue) < self._last_units and self._queued_items < self.max_group:
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(self.commit_delay / 8)

    def _take(self) -> list[_Unit]:
        ahead = self._small_ones_first()
        if ahead:
            return ahead
        group = self._in_order()
        self._queued_items -= sum(unit.items for unit in group)
        return group

    def _in_order(self) -> list[_Unit]:
        """The queue's first units, up to `max_group` items, and a large unit only at the head
        of its group: two large batches are two transactions, so that the units of other
        accounts behind them wait for one at most (`_small_ones_first`), and small units ahead
        of a large one fold without it (they would wait for its whole fold)."""
        group = [self._queue.popleft()]
        items = group[0].items
        while self._queue and items + self._queue[0].items <= self.max_group:
            if self._queue[0].items >= LARGE_UNIT:
                break
            unit = self._queue.popleft()
            group.append(unit)
            items += unit.items
        return group

    def _small_ones_first(self) -> list[_Unit]:
        """Fairness: when a large unit (a big event batch) is next, the small units queued behind
        it for other accounts go first, in a transaction of their own, so one account's batch
        does not hold another account's webhooks for its whole length."""
        head = self._queue[0]
        if head.items < LARGE_UNIT or len(self._queue) == 1:
            return []
        ahead = self._overtaking(
            set(head.accounts), list(self._queue)[1:], closed=not head.accounts
        )
        self._remove(ahead)
        return ahead

    def _overtaking(
        self, passed: set[int], queued: list[_Unit], closed: bool = False
    ) -> list[_Unit]:
        """The small units of `queued` that may go before a large unit of the `passed` accounts:
        a unit never passes one of its own accounts' units (each account's units keep their
        order), and a unit of no declared account (it may touch any) is passed by none."""
        passed = set(passed)
        ahead: list[_Unit] = []
        items = 0
        for unit in queued:
            if closed:
                break
            overtakes = unit.items < LARGE_UNIT and unit.accounts and not unit.accounts & passed
            if overtakes and items + unit.items <= self.max_group:
                ahead.append(unit)
                items += unit.items
                continue
            passed |= unit.accounts
            closed = not unit.accounts
        return ahead

    def _remove(self, units: list[_Unit]) -> None:
        for unit in units:
            self._queue.remove(unit)
        self._queued_items -= sum(unit.items for unit in units)

    async def _fold(self, group: list[_Unit]) -> None:
        started = time.perf_counter()
        units = sum(1 for unit in group if unit.items)  # bookkeeping is not counted
        items = sum(unit.items for unit in group)
        if len(group) == 1:
            settle = await self._alone(group[0])
            self._observe(Fold(units, items, time.perf_counter() - started, "committed"))
            settle()
            return
        try:
            results = await self._together(group)
        except Exception as error:
            log.info("group of %d units rolled back (%s): one at a time", len(group), error)
            settles = [await self._alone(unit) for unit in group]
            self._observe(Fold(units, items, time.perf_counter() - started, "split"))
            for settle in settles:
                settle()
            return
        self._observe(Fold(units, items, time.perf_counter() - started, "committed"))
        for unit, result in zip(group, results, strict=True):
            _settle(unit, result=result)

    async def _together(self, group: list[_Unit]) -> list[Any]:
        async with sqlite_writer_turn(self.engine), transaction(self.engine) as session:
            return await _fold_in(session, group)

    async def _alone(self, unit: _Unit) -> Callable[[], None]:
        """The unit in a transaction of its own, run again once after a lost race (`write`);
        returns what answers it (the fold is observed before any of its units is answered)."""
        try:
            result = await write(self.engine, lambda session: _fold_in(session, [unit]))
        except Exception as error:
            return partial(_settle, unit, error=error)
        return partial(_settle, unit, result=result[0])

    def _observe(self, fold: Fold) -> None:
        """Count a fold (planner statistics, the metrics' `on_fold`). Its units are committed,
        or answered with their own errors: bookkeeping that fails is logged, never theirs."""
        if not fold.units:
            return  # bookkeeping alone
        try:
            self.statistics.committed(fold.items)
            if self.on_fold is not None:
                self.on_fold(fold)
        except Exception:
            log.exception("could not count a fold of %d units", fold.units)


async def _fold_in(session: AsyncSession, group: list[_Unit]) -> list[Any]:
    """The group's units in the caller's transaction, then the statuses and aggregate deltas
    they left for the end; each unit's result, in order."""
    await _lock(session, sorted(set().union(*(unit.accounts for unit in group))))
    aggregates.defer_sync(session)
    statuses.buffer_statuses(session)
    results = await _run_units(session, group)
    await statuses.flush_statuses(session)
    await aggregates.sync_deferred(session)
    return results


async def _run_units(session: AsyncSession, group: list[_Unit]) -> list[Any]:
    """Each unit's result, in order; runs of consecutive units with the same bulk fold are
    folded together."""
    results: list[Any] = []
    index = 0
    while index < len(group):
        unit = group[index]
        if unit.bulk is None:
            results.append(await unit.work(session))
            index += 1
            continue
        fold = unit.bulk[0]
        run = [unit]
        while index + len(run) < len(group):
            following = group[index + len(run)].bulk
            if following is None or following[0] is not fold:
                break
            run.append(group[index + len(run)])
        results += await fold(session, [member.bulk[1] for member in run if member.bulk])
        index += len(run)
    return results


async def _lock(session: AsyncSession, accounts: list[int]) -> None:
    """PostgreSQL: take each account's ingestion lock (a transaction-level advisory lock), in
    account order, before anything else. Writers of other processes then never interleave
    their row locks on one account's contacts, agents, tags, event ids and aggregate cells in
    opposite orders (each transaction holds many units, in arrival order), so they cannot
    deadlock; writers of different accounts still fold concurrently. SQLite has one writer."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for account_id in accounts:
        await lock_account(session, account_id)


def _settle(unit: _Unit, *, result: Any = None, error: BaseException | None = None) -> None:
    if unit.future.done():  # the request went away; what it sent is stored all the same
        return
    if error is not None:
        unit.future.set_exception(error)
    else:
        unit.future.set_result(result)
