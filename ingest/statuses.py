"""Delivery statuses of outbound messages: never moved backwards, kept pending until the message
is recorded (WhatsApp may report a status before the inbox reports the message it sent)."""

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import String, bindparam, delete, update
from sqlalchemy import select as select_columns
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest.aggregates import StatusMove, move_statuses
from models import Message, PendingStatus
from models.enums import Direction
from models.sql import one_of, values_of

log = logging.getLogger(__name__)

# A status only moves forward along this order; `failed` wins over every other.
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}


@dataclass(frozen=True)
class Pricing:
    """What WhatsApp bills a message as, from the `pricing` of a status dated `at`."""

    category: str  # marketing | utility | authentication | service | ... (as WhatsApp names it)
    billable: bool | None
    at: int


@dataclass(frozen=True)
class DeliveryStatus:
    wamid: str
    status: str
    at: int
    error_code: int | None = None
    error_title: str | None = None
    pricing: Pricing | None = None


MAX_CATEGORY_LENGTH = 64


def pricing_of(raw: Any, at: int) -> Pricing | None:
    """The pricing of a status's `pricing` object: its `category`, and `billable`, or, in the
    per-message pricing model that deprecates it, whether its `type` is `regular` (the free
    customer-service and entry-point messages are not billed). None without a category."""
    if not isinstance(raw, dict):
        return None
    category = raw.get("category")
    if not isinstance(category, str) or not 0 < len(category.strip()) <= MAX_CATEGORY_LENGTH:
        return None
    billable = raw.get("billable")
    if not isinstance(billable, bool):
        kind = raw.get("type")
        billable = kind == "regular" if isinstance(kind, str) else None
    return Pricing(category.strip().lower(), billable, at)


def outranks(new: str, current: str | None) -> bool:
    return STATUS_RANK[new] > STATUS_RANK.get(current or "", 0)


BUFFERED = "statuses_buffered"


def buffer_statuses(session: AsyncSession) -> None:
    """From now on in this session, `apply_status` only queues statuses; they are applied
    together, in arrival order, by `flush_statuses` (the group commit writer calls it before
    commit; recording a message calls it first). A broadcast's statuses then cost a few
    statements per transaction instead of two each."""
    session.info[BUFFERED] = []


async def flush_statuses(session: AsyncSession) -> None:
    """Apply the statuses queued since `buffer_statuses` (nothing when none are)."""
    queued: list[tuple[int, DeliveryStatus]] | None = session.info.get(BUFFERED)
    if queued:
        session.info[BUFFERED] = []
        await _apply(session, queued)


async def apply_status(session: AsyncSession, account_id: int, status: DeliveryStatus) -> None:
    """Apply `status` to the account's outbound message with that wamid, or keep it pending."""
    if status.status not in STATUS_RANK:
        log.info("ignoring unknown delivery status %r of %s", status.status, status.wamid)
        return
    queued: list[tuple[int, DeliveryStatus]] | None = session.info.get(BUFFERED)
    if queued is not None:
        queued.append((account_id, status))
        return
    await _apply(session, [(account_id, status)])


async def _apply(session: AsyncSession, statuses: list[tuple[int, DeliveryStatus]]) -> None:
    """Apply statuses as if one after another, with one look-up per account, one UPDATE
    (executemany) for the messages whose status moves and one INSERT for those that wait."""
    updates: dict[int, tuple[int, DeliveryStatus]] = {}  # by message id: (account, status)
    priced: dict[int, tuple[int, Pricing]] = {}
    waiting: list[dict[str, Any]] = []
    moves: dict[int, list[StatusMove]] = {}
    for account_id in sorted({account_id for account_id, _ in statuses}):
        mine = [status for owner, status in statuses if owner == account_id]
        found = {
            row.wamid: [row.id, row.direction, row.status, row.sent_at, row.pricing_at]
            for row in await session.execute(
                FIND_MESSAGES, {"account_id": account_id, "wamids": {s.wamid for s in mine}}
            )
        }
        before = {message[0]: message[2] for message in found.values()}
        for status in mine:
            message = found.get(status.wamid)
            if message is None:
                waiting.append({"account_id": account_id, **_waiting(status)})
                continue
            if message[1] != Direction.OUTBOUND:
                log.info("ignoring a delivery status of inbound message %s", status.wamid)
                continue
            if outranks(status.status, message[2]):
                message[2] = status.status
                updates[message[0]] = (account_id, status)
            if status.pricing is not None and later(status.pricing, message[4]):
                message[4] = status.pricing.at
                priced[message[0]] = (account_id, status.pricing)
        moves[account_id] = [
            StatusMove(key, sent_at, before[key], now)
            for key, _, now, sent_at, _ in found.values()
            if now != before[key]
        ]
    if updates:
        await session.execute(
            SET_STATUS,
            [
                {"b_account_id": account, "message_id": key, **_values(status)}
                for key, (account, status) in sorted(updates.items())
            ],
        )
        for account_id, moved in moves.items():
            await move_statuses(session, account_id, moved)
    if priced:
        await session.execute(
            SET_PRICING,
            [
                {"b_account_id": account, "message_id": key, **_pricing(pricing)}
                for key, (account, pricing) in sorted(priced.items())
            ],
        )
    if waiting:
        await session.execute(PENDING.insert(), waiting)


def later(pricing: Pricing, current_at: int | None) -> bool:
    """Whether `pricing` replaces the one dated `current_at`: the latest status that carried a
    pricing gives it (at the same second, the one that arrived last)."""
    return current_at is None or pricing.at >= current_at


def _values(status: DeliveryStatus) -> dict[str, Any]:
    return {
        "status": status.status,
        "at": status.at,
        "error_code": status.error_code,
        "error_title": status.error_title,
    }


def message_columns(status: DeliveryStatus) -> dict[str, Any]:
    """The columns of a message inserted with `status` (and its pricing) already applied."""
    return {
        "status": status.status,
        "status_at": status.at,
        "error_code": status.error_code,
        "error_title": status.error_title,
        **_pricing(status.pricing),
    }


def _waiting(status: DeliveryStatus) -> dict[str, Any]:
    """A pending status's row (its pricing dated by the status itself, `at`)."""
    pricing = status.pricing
    return {
        **_values(status),
        "wamid": status.wamid,
        "pricing_category": pricing.category if pricing else None,
        "billable": pricing.billable if pricing else None,
    }


def _pricing(pricing: Pricing | None) -> dict[str, Any]:
    """The pricing columns of a message (all None without a pricing)."""
    return {
        "pricing_category": pricing.category if pricing else None,
        "billable": pricing.billable if pricing else None,
        "pricing_at": pricing.at if pricing else None,
    }


MESSAGE = Message.__table__  # type: ignore[attr-defined]
PENDING = PendingStatus.__table__  # type: ignore[attr-defined]
FIND_MESSAGES = select_columns(
    MESSAGE.c.id,
    MESSAGE.c.wamid,
    MESSAGE.c.direction,
    MESSAGE.c.status,
    MESSAGE.c.sent_at,
    MESSAGE.c.pricing_at,
).where(
    MESSAGE.c.account_id == bindparam("account_id"),
    one_of(MESSAGE.c.wamid, values_of("wamids", String())),
)


def _set_columns(**parameters: str) -> Any:
    """UPDATE of the message `message_id` of the account `b_account_id`: each column from the
    parameter named."""
    values: dict[str, Any] = {column: bindparam(name) for column, name in parameters.items()}
    key = (
        MESSAGE.c.account_id == bindparam("b_account_id"),
        MESSAGE.c.id == bindparam("message_id"),
    )
    return update(MESSAGE).where(*key).values(**values)


SET_STATUS = _set_columns(
    status="status", status_at="at", error_code="error_code", error_title="error_title"
)
SET_PRICING = _set_columns(
    pricing_category="pricing_category", billable="billable", pricing_at="pricing_at"
)


async def apply_pending_statuses(session: AsyncSession, message: Message) -> None:
    """Apply the best status that arrived before `message` was recorded, then forget them all."""
    waited = (await take_waiting(session, message.account_id, {message.wamid})).get(message.wamid)
    if waited is None or message.direction != Direction.OUTBOUND:
        return
    assert message.id is not None
    if outranks(waited.status, message.status):
        # No delivery figures to move: recorded just now, the message is not counted yet; the
        # sync that follows (`ingest.conversations.record_message`) counts it with this status.
        await _set_status(session, message.account_id, message.id, waited)
    if waited.pricing is not None:
        key = {"b_account_id": message.account_id, "message_id": message.id}
        await session.execute(SET_PRICING, {**key, **_pricing(waited.pricing)})


async def take_waiting(
    session: AsyncSession, account_id: int, wamids: set[str]
) -> dict[str, DeliveryStatus]:
    """For each of these wamids that statuses waited for, the best of them (highest rank, then
    latest), with the pricing of the latest that carried one; the waiting rows are removed."""
    rows = (await session.execute(WAITING, {"account_id": account_id, "wamids": wamids})).all()
    best: dict[str, DeliveryStatus] = {}
    priced: dict[str, Pricing] = {}
    for row in rows:  # in arrival order
        status = DeliveryStatus(row.wamid, row.status, row.at, row.error_code, row.error_title)
        current = best.get(row.wamid)
        if current is None or (STATUS_RANK[status.status], status.at) > (
            STATUS_RANK[current.status],
            current.at,
        ):
            best[row.wamid] = status
        if row.pricing_category is not None:
            pricing = Pricing(row.pricing_category, row.billable, row.at)
            known = priced.get(row.wamid)
            if later(pricing, known.at if known else None):
                priced[row.wamid] = pricing
    best = {wamid: replace(status, pricing=priced.get(wamid)) for wamid, status in best.items()}
    if best:
        await session.execute(FORGET_WAITING, {"account_id": account_id, "wamids": set(best)})
    return best


async def _set_status(
    session: AsyncSession, account_id: int, message_id: int, status: DeliveryStatus
) -> None:
    key = {"b_account_id": account_id, "message_id": message_id}
    await session.execute(SET_STATUS, {**key, **_values(status)})


WAITING = (
    select_columns(
        PENDING.c.wamid,
        PENDING.c.status,
        PENDING.c.at,
        PENDING.c.error_code,
        PENDING.c.error_title,
        PENDING.c.pricing_category,
        PENDING.c.billable,
    )
    .where(
        PENDING.c.account_id == bindparam("account_id"),
        one_of(PENDING.c.wamid, values_of("wamids", String())),
    )
    .order_by(PENDING.c.id)
)
FORGET_WAITING = delete(PENDING).where(
    PENDING.c.account_id == bindparam("account_id"),
    one_of(PENDING.c.wamid, values_of("wamids", String())),
)


PENDING_TTL_SECONDS = 7 * 86_400  # a status whose message is not recorded within 7 days is dropped


async def prune_pending(session: AsyncSession, account_id: int, now: int) -> int:
    """Forget the account's pending statuses dated more than `PENDING_TTL_SECONDS` before `now`:
    their message is not coming (a status of a message sent from elsewhere, or a probe), and
    kept they would pile up for ever. Returns how many were forgotten."""
    cutoff = now - PENDING_TTL_SECONDS
    result = await session.execute(
        delete(PENDING).where(PENDING.c.account_id == account_id, PENDING.c.at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
