"""Edits and revokes of messages: WhatsApp's `edit` and `revoke` messages (a contact's, or the
business's own echoed from the WhatsApp Business app) are never messages of their own.

The original message is marked instead: `edited_at` (its first edit: the earliest, whatever
order edits arrive in) or `deleted_at` (deleted for everyone), kept for the record and still
counted once in every figure; its conversation counts how many of its messages were edited and
deleted (`edited_messages`, `deleted_messages`, shown by the details). Another edit of a
message, or a redelivered one, changes no count. An edit or revoke whose original is not
recorded yet waits in `pending_change` and is applied when the message is recorded
(`apply_waiting`, called on every path that records messages); it is
forgotten after 7 days with the pending statuses (`prune_waiting`).
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import String, Update, bindparam, delete, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation, Message, PendingChange
from models.sql import one_of, values_of

log = logging.getLogger(__name__)

KINDS = {"edit": "edited", "revoke": "deleted"}  # Meta's message type -> what it does
MARKED = {"edited": "edited_at", "deleted": "deleted_at"}  # the message's column
COUNTED = {"edited": "edited_messages", "deleted": "deleted_messages"}  # the conversation's


@dataclass(frozen=True)
class MessageChange:
    original: str  # the wamid of the message edited or revoked
    kind: str  # edited | deleted
    at: int


MESSAGE = Message.__table__  # type: ignore[attr-defined]
CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
PENDING = PendingChange.__table__  # type: ignore[attr-defined]
_WAMIDS = values_of("wamids", String())
FIND = select(
    MESSAGE.c.id,
    MESSAGE.c.wamid,
    MESSAGE.c.conversation_id,
    MESSAGE.c.edited_at,
    MESSAGE.c.deleted_at,
).where(MESSAGE.c.account_id == bindparam("account_id"), one_of(MESSAGE.c.wamid, _WAMIDS))
WAITING = select(PENDING.c.wamid, PENDING.c.kind, PENDING.c.at).where(
    PENDING.c.account_id == bindparam("account_id"), one_of(PENDING.c.wamid, _WAMIDS)
)
FORGET = delete(PENDING).where(
    PENDING.c.account_id == bindparam("account_id"), one_of(PENDING.c.wamid, _WAMIDS)
)


def _mark(kind: str) -> Update:
    column = MESSAGE.c[MARKED[kind]]
    return (
        update(MESSAGE)
        .where(
            MESSAGE.c.account_id == bindparam("b_account_id"),
            MESSAGE.c.id == bindparam("message_id"),
            or_(column.is_(None), column > bindparam("at")),
        )
        .values({MARKED[kind]: bindparam("at")})
    )


def _count(kind: str) -> Update:
    column = CONVERSATION.c[COUNTED[kind]]
    return (
        update(CONVERSATION)
        .where(
            CONVERSATION.c.account_id == bindparam("b_account_id"),
            CONVERSATION.c.id == bindparam("conversation_id"),
        )
        .values({COUNTED[kind]: column + bindparam("added")})
    )


MARK = {kind: _mark(kind) for kind in MARKED}
COUNT = {kind: _count(kind) for kind in COUNTED}


async def apply_changes(
    session: AsyncSession, account_id: int, changes: Iterable[MessageChange]
) -> int:
    """Mark the originals of these changes (the earliest of a kind wins, whatever the order),
    keep those whose original is unknown waiting; returns how many messages were newly marked."""
    earliest: dict[tuple[str, str], int] = {}  # (wamid, kind) -> the earliest instant
    for change in changes:
        key = (change.original, change.kind)
        earliest[key] = min(change.at, earliest.get(key, change.at))
    if not earliest:
        return 0
    bound = {"account_id": account_id, "wamids": {wamid for wamid, _ in earliest}}
    found = {row.wamid: row for row in (await session.execute(FIND, bound)).all()}
    waiting = []
    newly = 0
    for kind in MARKED:
        marked = []
        for (wamid, of_kind), at in earliest.items():
            row = found.get(wamid)
            if of_kind != kind:
                continue
            if row is None:
                waiting.append({"account_id": account_id, "wamid": wamid, "kind": kind, "at": at})
            elif row._mapping[MARKED[kind]] is None or row._mapping[MARKED[kind]] > at:
                marked.append((row, at))
        if not marked:
            continue
        await session.execute(
            MARK[kind],
            [{"b_account_id": account_id, "message_id": row.id, "at": at} for row, at in marked],
        )
        added: dict[int, int] = {}
        for row, _ in marked:
            if row._mapping[MARKED[kind]] is None:  # counted once, when first marked
                added[row.conversation_id] = added.get(row.conversation_id, 0) + 1
        if added:
            newly += sum(added.values())
            await session.execute(
                COUNT[kind],
                [
                    {"b_account_id": account_id, "conversation_id": key, "added": n}
                    for key, n in sorted(added.items())
                ],
            )
    if waiting:
        await session.execute(PENDING.insert(), waiting)
    return newly


async def apply_waiting(session: AsyncSession, account_id: int, wamids: set[str]) -> int:
    """After messages with these wamids were recorded: apply the changes that waited for them
    (one look-up; nothing else when none did)."""
    if not wamids:
        return 0
    bound = {"account_id": account_id, "wamids": wamids}
    rows = (await session.execute(WAITING, bound)).all()
    if not rows:
        return 0
    await session.execute(FORGET, bound)
    return await apply_changes(
        session, account_id, [MessageChange(row.wamid, row.kind, row.at) for row in rows]
    )


async def prune_waiting(session: AsyncSession, account_id: int, cutoff: int) -> int:
    """Forget the account's waiting changes dated before `cutoff`; returns how many."""
    result = await session.execute(
        delete(PENDING).where(PENDING.c.account_id == account_id, PENDING.c.at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
