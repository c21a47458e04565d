"""Inbound webhook messages folded in bulk: the common case of a busy number, in a few statements.

A run of webhook deliveries (consecutive units of one group transaction) is folded set-wise: one
look-up of the wamids already stored, the contacts locked together, one read of each contact's
conversations that may cover the new instants, the conversation rules applied in memory, then one
INSERT of the messages, one INSERT per new conversation and one UPDATE (executemany) of the
conversations that changed. It folds the messages that arrive in order: a message later than
everything its conversation holds (`append`), or one that no conversation covers (`start`).
Anything else (a message older than its conversation's last one, a closed or message-less
conversation, a click-to-WhatsApp referral, a `[ref CODE]` for the website button) goes to the
general path (`ingest.conversations.record_message`), and so do the contact's later messages in
the run, so each contact's messages keep their order; contacts do not interact. The property
test (`tests/test_group_commit.py`) holds both paths to the same rows.

`append` and `start` are the rules of `ingest.conversations` for those two cases, derived from
them: covering windows [started_at - D, end], the figures `recompute_figures` would compute
after the message, the auto-close rule at `clock.now`, and `close_overdue` before a start.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import aggregates
from ingest.buttons import REF_CODE
from ingest.conversations import Clock
from models import Conversation, Message

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
STATE = (
    "id", "contact_id", "channel_id", "source", "source_explicit", "direction", "status",
    "started_at", "first_inbound_at", "first_response_at", "last_message_at", "closed_at",
    "closed_by_id", "auto_closed", "message_count", "inbound_count",
)  # fmt: skip
CHANGED = (
    "channel_id", "status", "first_inbound_at", "first_response_at", "last_message_at",
    "closed_at", "closed_by_id", "auto_closed", "message_count", "inbound_count",
)  # fmt: skip


@dataclass
class Inbound:
    """One inbound message of a webhook delivery, for a known channel."""

    item: int  # which delivery of the run it came in
    contact_id: int
    channel_id: int
    wamid: str
    sent_at: int
    type: str
    body: str | None
    general: bool  # needs the general path whatever the state (referral, ref code)
    origin: Any = None  # what the general path needs (the channel and Meta's message)


@dataclass
class Fold:
    """What the bulk fold did, and the messages it left to the general path (in order)."""

    stored: list[Inbound] = field(default_factory=list)
    duplicates: list[Inbound] = field(default_factory=list)
    general: list[Inbound] = field(default_factory=list)


def needs_general_path(body: str | None, referral: bool) -> bool:
    return referral or (body is not None and REF_CODE.search(body) is not None)


async def fold(session: AsyncSession, clock: Clock, messages: list[Inbound]) -> Fold:
    """Store what can be folded in bulk; return it, the duplicates and what is left."""
    result = Fold()
    if not messages:
        return result
    stored_before = await _stored_wamids(session, clock.account_id, {m.wamid for m in messages})
    conversations = await _conversations(session, clock, messages)
    seen: set[str] = set()
    left_to_general: set[int] = set()  # contacts whose next messages take the general path
    changed: dict[int, dict[str, Any]] = {}
    rows: list[tuple[Inbound, dict[str, Any]]] = []
    for message in messages:
        if message.wamid in stored_before or message.wamid in seen:
            result.duplicates.append(message)
            continue
        seen.add(message.wamid)
        mine = conversations.setdefault(message.contact_id, [])
        target = None if message.general else _target(clock, mine, message)
        if message.contact_id in left_to_general or target is None:
            left_to_general.add(message.contact_id)
            result.general.append(message)
            continue
        if target == "start":
            for overdue in _close_overdue(clock, mine, until=message.sent_at - 1):
                changed[overdue["id"]] = overdue
            conversation = _start(clock, message)
            conversation["id"] = await _insert_conversation(session, clock, conversation)
            mine.append(conversation)
        else:
            conversation = target
            _append(clock, conversation, message)
            changed[conversation["id"]] = conversation
        rows.append((message, conversation))
        result.stored.append(message)
    if changed:
        await session.execute(
            UPDATE_CONVERSATION,
            [{"key": key, **{name: row[name] for name in CHANGED}} for key, row in changed.items()],
        )
    if rows:
        await session.execute(
            MESSAGE.insert(),
            [
                {
                    "account_id": clock.account_id,
                    "conversation_id": conversation["id"],
                    "wamid": message.wamid,
                    "direction": "INBOUND",
                    "sender": "contact",
                    "type": message.type,
                    "body": message.body,
                    "sent_at": message.sent_at,
                }
                for message, conversation in rows
            ],
        )
    touched = set(changed) | {conversation["id"] for _, conversation in rows}
    await aggregates.sync_conversations(session, clock.account_id, touched)
    return result


def _covers(clock: Clock, conversation: dict[str, Any], message: Inbound) -> bool:
    """`conversation_covering`'s window and channel conditions, for one conversation."""
    end = conversation["closed_at"]
    if end is None:
        end = conversation["last_message_at"] + clock.delay
    return conversation["started_at"] - clock.delay <= message.sent_at <= end and conversation[
        "channel_id"
    ] in (None, message.channel_id)


def _target(clock: Clock, mine: list[dict[str, Any]], message: Inbound) -> Any:
    """The conversation the message appends to, "start" for a new one, None: general path."""
    covering = sorted(
        (c for c in mine if _covers(clock, c, message)), key=lambda c: (c["started_at"], c["id"])
    )
    if not covering:
        return "start"
    started_before = [c for c in covering if c["started_at"] <= message.sent_at]
    chosen = started_before[-1] if started_before else covering[0]
    appendable = (
        chosen["closed_at"] is None
        and chosen["message_count"] > 0
        and chosen["last_message_at"] < message.sent_at
    )
    return chosen if appendable else None


def _append(clock: Clock, conversation: dict[str, Any], message: Inbound) -> None:
    """The figures after a contact's message later than all the conversation holds: the first
    sender (direction, source), the first reply and the assignee do not change."""
    conversation["message_count"] += 1
    conversation["inbound_count"] += 1
    conversation["last_message_at"] = message.sent_at
    if conversation["first_inbound_at"] is None:
        conversation["first_inbound_at"] = message.sent_at
        conversation["first_response_at"] = None  # no reply can follow the latest message yet
    if conversation["channel_id"] is None:
        conversation["channel_id"] = message.channel_id
    _apply_auto_close(clock, conversation)


def _start(clock: Clock, message: Inbound) -> dict[str, Any]:
    conversation: dict[str, Any] = {
        "id": None,
        "contact_id": message.contact_id,
        "channel_id": message.channel_id,
        "source": "INBOUND",
        "source_explicit": False,
        "direction": "INBOUND",
        "status": "OPEN",
        "started_at": message.sent_at,
        "first_inbound_at": message.sent_at,
        "first_response_at": None,
        "last_message_at": message.sent_at,
        "closed_at": None,
        "closed_by_id": None,
        "auto_closed": False,
        "message_count": 1,
        "inbound_count": 1,
    }
    _apply_auto_close(clock, conversation)
    return conversation


def _apply_auto_close(clock: Clock, conversation: dict[str, Any]) -> None:
    """`conversations._apply_auto_close` and the status rule, for an open conversation whose
    last message is the contact's."""
    due = conversation["last_message_at"] + clock.delay
    if due <= clock.now:
        conversation.update(closed_at=due, auto_closed=True, closed_by_id=None, status="CLOSED")
    else:
        conversation.update(closed_at=None, auto_closed=False, status="OPEN")


def _close_overdue(clock: Clock, mine: list[dict[str, Any]], until: int) -> list[dict[str, Any]]:
    """`conversations.close_overdue` of one contact, in memory."""
    closed = []
    for conversation in mine:
        open_ = conversation["status"] in ("OPEN", "PENDING") and conversation["closed_at"] is None
        if open_ and conversation["last_message_at"] <= until - clock.delay:
            conversation.update(
                closed_at=conversation["last_message_at"] + clock.delay,
                auto_closed=True,
                closed_by_id=None,
                status="CLOSED",
            )
            closed.append(conversation)
    return closed


async def _stored_wamids(session: AsyncSession, account_id: int, wamids: set[str]) -> set[str]:
    found = await session.scalars(STORED, {"account_id": account_id, "wamids": wamids})
    return set(found.all())


async def _conversations(
    session: AsyncSession, clock: Clock, messages: list[Inbound]
) -> dict[int, list[dict[str, Any]]]:
    """Each contact's conversations that may cover one of the instants or be closed by a start:
    open ones, and those closed at or after the earliest instant. Locked (FOR UPDATE) on
    PostgreSQL, as the general path locks what it reads."""
    rows = await session.execute(
        CONVERSATIONS,
        {
            "account_id": clock.account_id,
            "contacts": {m.contact_id for m in messages},
            "earliest": min(m.sent_at for m in messages),
        },
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows.mappings():
        found.setdefault(row["contact_id"], []).append(dict(row))
    return found


async def _insert_conversation(
    session: AsyncSession, clock: Clock, conversation: dict[str, Any]
) -> int:
    values = {name: value for name, value in conversation.items() if name != "id"}
    values |= {"account_id": clock.account_id, "outbound_count": 0}
    key = await session.scalar(CONVERSATION.insert().values(values).returning(CONVERSATION.c.id))
    assert key is not None
    return int(key)


STORED = select(MESSAGE.c.wamid).where(
    MESSAGE.c.account_id == bindparam("account_id"),
    MESSAGE.c.wamid.in_(bindparam("wamids", expanding=True)),
)
CONVERSATIONS = (
    select(*(CONVERSATION.c[name] for name in STATE))
    .where(
        CONVERSATION.c.account_id == bindparam("account_id"),
        CONVERSATION.c.contact_id.in_(bindparam("contacts", expanding=True)),
        or_(
            CONVERSATION.c.closed_at.is_(None),
            CONVERSATION.c.closed_at >= bindparam("earliest"),
        ),
    )
    .order_by(CONVERSATION.c.contact_id, CONVERSATION.c.id)
    .with_for_update()
)
UPDATE_CONVERSATION = (
    update(CONVERSATION)
    .where(CONVERSATION.c.id == bindparam("key"))
    .values({name: bindparam(name) for name in CHANGED})
)
