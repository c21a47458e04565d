"""Office hours and service levels, stored on each conversation row.

For an account with office hours (`models.office_hours`) or service-level targets
(`models.tables.ServiceLevel`), each conversation row holds:

- `first_response_business_seconds`: the office-hours seconds between the contact's first
  message and the first response (null without a response; null for every conversation of an
  account without office hours, where the metrics take the calendar time: `models.metrics`);
- `duration_business_seconds`: the office-hours seconds between its start and its close;
- `started_outside_office_hours`: whether its first instant was outside office hours;
- `first_response_due_at`: the contact's first message + the first-response target (in office
  hours: the instant at which that much office time has passed; in calendar time: a sum), and
  `resolution_due_at`: the start + the resolution target, likewise;
- `sla_first_response_met` / `sla_resolution_met`: true when the response (the close) came at or
  before its deadline, false when it came after, or has not come and the deadline has passed;
  null when there is no target, nothing to measure (no message from the contact) or the
  conversation is still in time.

They are computed just before the report aggregates are brought up to date
(`ingest.aggregates.sync_conversations`, which every change of a conversation goes through, on
every ingestion path), so the aggregates sum them like any other figure; the auto-close job
(`ingest.autoclose`) also marks breached the conversations whose deadline passed while they
waited (`overdue`). Changing an account's office hours, targets or zone recomputes all its
conversations (`recompute_account`) before its aggregates are rebuilt.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Row, Table, and_, bindparam, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest.transactions import AccountSettings, account_settings
from models import Conversation
from models.db import now as current_instant
from models.office_hours import OfficeHours, parse_office_hours
from models.sql import one_of, values_of

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
CHUNK = 2000  # conversations per statement when an account is recomputed

# What is derived, in the order `_derived` returns it.
DERIVED = (
    "first_response_business_seconds",
    "duration_business_seconds",
    "started_outside_office_hours",
    "first_response_due_at",
    "resolution_due_at",
    "sla_first_response_met",
    "sla_resolution_met",
)
BLANK: tuple[Any, ...] = (None, None, False, None, None, None, None)


@dataclass(frozen=True)
class Policy:
    """What an account's conversations are measured against."""

    zone: str
    hours: OfficeHours | None  # None: always open
    first_response: int | None  # target seconds; None: none
    resolution: int | None
    business: bool  # the targets count office hours (else calendar time)

    def working(self, start: int, end: int) -> int | None:
        """Office-hours seconds of [start, end); None without office hours (calendar time)."""
        if self.hours is None:
            return None
        return self.hours.working_seconds(start, end, self.zone)

    def due(self, since: int | None, target: int | None) -> int | None:
        if since is None or target is None:
            return None
        if self.business and self.hours is not None:
            return self.hours.deadline(since, target, self.zone)
        return since + target


def policy_of(settings: AccountSettings) -> Policy | None:
    """The account's policy; None when it has neither office hours nor targets."""
    first, resolution = settings.first_response_target, settings.resolution_target
    if settings.office_hours is None and first is None and resolution is None:
        return None
    hours = None
    if settings.office_hours is not None:
        hours = _parsed(settings.office_hours, settings.closed_dates or "")
    business = settings.targets_in_business_hours is not False
    return Policy(settings.timezone, hours, first, resolution, business)


@lru_cache(maxsize=64)
def _parsed(schedule: str, closed: str) -> OfficeHours:
    return parse_office_hours(schedule, closed)


def _outcome(due: int | None, done_at: int | None, now: int) -> bool | None:
    if due is None:
        return None
    if done_at is not None:
        return done_at <= due
    return False if due < now else None


def derived(policy: Policy | None, row: Row[Any] | Sequence[Any], now: int) -> tuple[Any, ...]:
    """The stored columns (`DERIVED`) of a conversation from (started_at, first_inbound_at,
    first_response_at, closed_at)."""
    if policy is None:
        return BLANK
    started, inbound, response, closed = row[:4]
    first_response = None
    if inbound is not None and response is not None:
        first_response = policy.working(inbound, response)
    duration = policy.working(started, closed) if closed is not None else None
    outside = policy.hours is not None and policy.working(started, started + 1) == 0
    response_due = policy.due(inbound, policy.first_response)
    resolution_due = policy.due(started, policy.resolution)
    return (
        first_response,
        duration,
        outside,
        response_due,
        resolution_due,
        _outcome(response_due, response, now),
        _outcome(resolution_due, closed, now),
    )


# --- statements ------------------------------------------------------------------------------

_IDS = values_of("ids", BigInteger())
_INSTANTS = (
    CONVERSATION.c.started_at,
    CONVERSATION.c.first_inbound_at,
    CONVERSATION.c.first_response_at,
    CONVERSATION.c.closed_at,
)
READ = select(CONVERSATION.c.id, *_INSTANTS, *(CONVERSATION.c[name] for name in DERIVED)).where(
    CONVERSATION.c.account_id == bindparam("account_id"), one_of(CONVERSATION.c.id, _IDS)
)
WRITE = (
    update(CONVERSATION)
    .where(
        CONVERSATION.c.account_id == bindparam("b_account_id"),
        CONVERSATION.c.id == bindparam("b_id"),
    )
    .values({name: bindparam(f"b_{name}") for name in DERIVED})
)


async def settle(
    session: AsyncSession, account_id: int, conversation_ids: Iterable[int], now: int | None = None
) -> None:
    """Bring the stored columns of these conversations up to date (nothing to do for an account
    without office hours and targets: its rows hold the blank values)."""
    policy = policy_of(await account_settings(session, account_id))
    if policy is None:
        return
    await _write(session, account_id, sorted(set(conversation_ids)), policy, now)


async def _write(
    session: AsyncSession,
    account_id: int,
    ids: list[int],
    policy: Policy | None,
    now: int | None,
) -> int:
    moment = current_instant() if now is None else now
    changed = []
    for start in range(0, len(ids), CHUNK):
        bound = {"account_id": account_id, "ids": ids[start : start + CHUNK]}
        for row in (await session.execute(READ, bound)).all():
            values = derived(policy, row[1:5], moment)
            if tuple(row[5:]) != values:
                changed.append(
                    {
                        "b_account_id": account_id,
                        "b_id": row[0],
                        **{f"b_{name}": value for name, value in zip(DERIVED, values, strict=True)},
                    }
                )
    for start in range(0, len(changed), CHUNK):
        await session.execute(WRITE, changed[start : start + CHUNK])
    return len(changed)


async def recompute_account(session: AsyncSession, account_id: int) -> int:
    """Recompute every conversation of the account, after its office hours, targets or zone
    changed (the caller then rebuilds its aggregates); returns how many rows changed."""
    policy = policy_of(await account_settings(session, account_id))
    return await _write(session, account_id, await _all_ids(session, account_id), policy, None)


async def measure_account(session: AsyncSession, account_id: int) -> int:
    """After rows were written in bulk, blank (`ingest.demo`): measure them if the account has
    office hours or targets (the caller then rebuilds its aggregates)."""
    if policy_of(await account_settings(session, account_id)) is None:
        return 0
    return await recompute_account(session, account_id)


async def _all_ids(session: AsyncSession, account_id: int) -> list[int]:
    query = select(CONVERSATION.c.id).where(CONVERSATION.c.account_id == account_id)
    return list((await session.scalars(query)).all())


async def overdue(session: AsyncSession, account_id: int, now: int) -> list[int]:
    """The conversations still in time whose deadline has passed (the auto-close job's pass
    brings them up to date: breached); none for an account without targets."""
    if policy_of(await account_settings(session, account_id)) is None:
        return []
    c = CONVERSATION.c
    query = select(c.id).where(
        c.account_id == account_id,
        or_(
            and_(c.sla_first_response_met.is_(None), c.first_response_due_at < now),
            and_(c.sla_resolution_met.is_(None), c.resolution_due_at < now),
        ),
    )
    return list((await session.scalars(query.with_for_update(skip_locked=True))).all())
