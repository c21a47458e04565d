"""Delivery statuses of outbound messages: never moved backwards, kept pending until the message
is recorded (WhatsApp may report a status before the inbox reports the message it sent)."""

import logging
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Message, PendingStatus

log = logging.getLogger(__name__)

# A status only moves forward along this order; `failed` wins over every other.
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}


@dataclass(frozen=True)
class DeliveryStatus:
    wamid: str
    status: str
    at: int
    error_code: int | None = None
    error_title: str | None = None


def outranks(new: str, current: str | None) -> bool:
    return STATUS_RANK[new] > STATUS_RANK.get(current or "", 0)


async def apply_status(session: AsyncSession, account_id: int, status: DeliveryStatus) -> None:
    """Apply `status` to the account's outbound message with that wamid, or keep it pending."""
    if status.status not in STATUS_RANK:
        log.info("ignoring unknown delivery status %r of %s", status.status, status.wamid)
        return
    row = (
        await session.execute(
            select(Message.id, Message.direction, Message.status).where(
                Message.account_id == account_id, Message.wamid == status.wamid
            )
        )
    ).first()
    if row is None:
        session.add(
            PendingStatus(
                account_id=account_id,
                wamid=status.wamid,
                status=status.status,
                at=status.at,
                error_code=status.error_code,
                error_title=status.error_title,
            )
        )
        await session.flush()
        return
    message_id, direction, current = row
    if direction != "OUTBOUND":
        log.info("ignoring a delivery status of inbound message %s", status.wamid)
        return
    if outranks(status.status, current):
        await _set_status(session, message_id, status)


async def apply_pending_statuses(session: AsyncSession, message: Message) -> None:
    """Apply the best status that arrived before `message` was recorded, then forget them all."""
    pending = (
        await session.scalars(
            select(PendingStatus).where(
                PendingStatus.account_id == message.account_id,
                PendingStatus.wamid == message.wamid,
            )
        )
    ).all()
    if not pending:
        return
    if message.direction == "OUTBOUND":
        best = max(pending, key=lambda row: (STATUS_RANK[row.status], row.at))
        if outranks(best.status, message.status):
            assert message.id is not None
            await _set_status(
                session,
                message.id,
                DeliveryStatus(
                    message.wamid, best.status, best.at, best.error_code, best.error_title
                ),
            )
    await session.execute(
        delete(PendingStatus).where(
            col(PendingStatus.account_id) == message.account_id,
            col(PendingStatus.wamid) == message.wamid,
        )
    )


async def _set_status(session: AsyncSession, message_id: int, status: DeliveryStatus) -> None:
    await session.execute(
        update(Message)
        .where(col(Message.id) == message_id)
        .values(
            status=status.status,
            status_at=status.at,
            error_code=status.error_code,
            error_title=status.error_title,
        )
    )
