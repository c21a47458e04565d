"""Messages folded in bulk: the common case of a busy number, in a few statements.

A run of messages (the inbound messages of consecutive webhook deliveries in one group
transaction, or consecutive `message.sent` events of a batch) is folded set-wise: one look-up of
the wamids already stored, one read of each contact's conversations that may cover the new
instants (the contacts are locked by the caller), the conversation rules applied in memory, then
one INSERT of the messages, one INSERT per new conversation and one UPDATE (executemany) of the
conversations that changed. It folds the messages that arrive in order: a message later than
everything its conversation holds (`append`), or one that no conversation covers (`start`).
Anything else (a message older than its conversation's last one, a closed or message-less
conversation, a click-to-WhatsApp referral, a `[ref CODE]` for the website button) goes to the
general path (`ingest.conversations.record_message`), and so do the contact's later messages in
the run, so each contact's messages keep their order; contacts do not interact. The property
test (`tests/ingest/test_group_commit.py`) holds both paths to the same rows.

`append` and `start` are the rules of `ingest.conversations` for those two cases, derived from
them: covering windows [started_at - D, end], the figures `recompute_figures` would compute
after the message, the first agent who writes taking an unassigned conversation, the auto-close
rule at `clock.now`, `close_overdue` before a start, and the statuses that waited for an
outbound message (`ingest.statuses.apply_pending_statuses`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, String, Table, bindparam, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import aggregates, changes
from ingest.buttons import REF_CODE
from ingest.contacts import dialect_insert
from ingest.conversations import DIRECTION_OF_SENDER, Clock, NewMessage
from ingest.rules import append, start
from ingest.statuses import flush_statuses, message_columns, take_waiting
from models import Conversation, ConversationTag, Message
from models.enums import Status
from models.sql import one_of, values_of

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
STATE = (
    "id", "contact_id", "channel_id", "assignee_id", "source", "source_explicit", "direction",
    "status", "started_at", "first_inbound_at", "first_response_at", "last_message_at",
    "closed_at", "closed_by_id", "auto_closed", "message_count", "inbound_count", "outbound_count",
)  # fmt: skip
CHANGED = (
    "channel_id", "assignee_id", "status", "first_inbound_at", "first_response_at",
    "last_message_at", "closed_at", "closed_by_id", "auto_closed", "message_count",
    "inbound_count", "outbound_count",
)  # fmt: skip
NO_STATUS = {
    "status": None,
    "status_at": None,
    "error_code": None,
    "error_title": None,
    "pricing_category": None,
    "billable": None,
    "pricing_at": None,
}


@dataclass
class Arrival:
    """One message to fold, and where it came from."""

    item: int  # which delivery or event of the run it came in
    message: NewMessage
    general: bool = False  # the general path whatever the state (referral, ref code)
    origin: Any = None  # what the general path needs (webhooks: the channel and Meta's message)

    @property
    def contact_id(self) -> int:
        return self.message.contact_id

    @property
    def wamid(self) -> str:
        return self.message.wamid

    @property
    def sent_at(self) -> int:
        return self.message.sent_at


@dataclass
class Tagging:
    """A `conversation.tagged` event naming a contact: its current conversation (the open one,
    else the latest) gets the tag. Folded when the run knows that conversation is open."""

    item: int
    contact_id: int
    tag_id: int
    origin: Any = None  # the event, for the general path


@dataclass
class Fold:
    """What the bulk fold did, and what it left to the general path (in order)."""

    stored: list[Arrival] = field(default_factory=list)
    duplicates: list[Arrival] = field(default_factory=list)
    general: list[Arrival | Tagging] = field(default_factory=list)
    tagged: list[tuple[int, int]] = field(default_factory=list)  # (item, conversation id)


def needs_general_path(body: str | None, referral: bool) -> bool:
    return referral or (body is not None and REF_CODE.search(body) is not None)


async def fold(session: AsyncSession, clock: Clock, run: Sequence[Arrival | Tagging]) -> Fold:
    """Store what can be folded in bulk; return it, the duplicates and what is left."""
    result = Fold()
    if not run:
        return result
    await flush_statuses(session)  # statuses that arrived before may be about these messages
    arrivals = [item for item in run if isinstance(item, Arrival)]
    stored_before = await _stored_wamids(session, clock.account_id, {a.wamid for a in arrivals})
    conversations = await _conversations(session, clock, run)
    seen: set[str] = set()
    left_to_general: set[int] = set()  # contacts whose next items take the general path
    changed: dict[int, dict[str, Any]] = {}  # stored conversations that change
    started: list[dict[str, Any]] = []  # new conversations, inserted once the run is folded
    rows: list[tuple[Arrival, dict[str, Any]]] = []
    tags: list[tuple[dict[str, Any], int, int]] = []  # (conversation, tag id, item)

    def note_changed(conversation: dict[str, Any]) -> None:
        if conversation["id"] is not None:  # a new one is inserted as it ends
            changed[conversation["id"]] = conversation

    for arrival in run:
        mine = conversations.setdefault(arrival.contact_id, [])
        if isinstance(arrival, Tagging):
            current = None if arrival.contact_id in left_to_general else _open(mine)
            if current is None:
                left_to_general.add(arrival.contact_id)
                result.general.append(arrival)
            else:
                if _overdue(clock, current):  # as the general path's recompute would close it
                    _close(clock, current)
                    note_changed(current)
                tags.append((current, arrival.tag_id, arrival.item))
            continue
        if arrival.wamid in stored_before or arrival.wamid in seen:
            result.duplicates.append(arrival)
            continue
        seen.add(arrival.wamid)
        target = None if arrival.general else _target(clock, mine, arrival)
        if arrival.contact_id in left_to_general or target is None:
            left_to_general.add(arrival.contact_id)
            result.general.append(arrival)
            continue
        if target == "start":
            for overdue in _close_overdue(clock, mine, until=arrival.sent_at - 1):
                note_changed(overdue)
            conversation = start(clock, arrival.message, order=len(started))
            started.append(conversation)
            mine.append(conversation)
        else:
            conversation = target
            append(clock, conversation, arrival.message)
            note_changed(conversation)
        rows.append((arrival, conversation))
        result.stored.append(arrival)
    if started:
        await _insert_conversations(session, clock, started)
    if changed:
        await session.execute(
            UPDATE_CONVERSATION,
            [
                {"account": clock.account_id, "key": key, **{name: row[name] for name in CHANGED}}
                for key, row in changed.items()
            ],
        )
    if rows:
        waited = await _waiting_statuses(session, clock.account_id, rows)
        await session.execute(
            MESSAGE.insert(),
            [
                {
                    "account_id": clock.account_id,
                    "conversation_id": conversation["id"],
                    "wamid": arrival.wamid,
                    "direction": DIRECTION_OF_SENDER[arrival.message.sender],
                    "sender": arrival.message.sender,
                    "agent_id": arrival.message.agent_id,
                    "type": arrival.message.type,
                    "body": arrival.message.body,
                    "sent_at": arrival.sent_at,
                    **waited.get(arrival.wamid, NO_STATUS),
                }
                for arrival, conversation in rows
            ],
        )
        await changes.apply_waiting(session, clock.account_id, {a.wamid for a, _ in rows})
    if tags:
        await session.execute(
            _tag_insert(session),
            [
                {"account_id": clock.account_id, "conversation_id": c["id"], "tag_id": tag_id}
                for c, tag_id, _ in tags
            ],
        )
        result.tagged = [(item, c["id"]) for c, _, item in tags]
    touched = set(changed) | {c["id"] for c in started} | {c["id"] for c, _, _ in tags}
    await aggregates.sync_conversations(session, clock.account_id, touched, clock.now)
    return result


def _covers(clock: Clock, conversation: dict[str, Any], arrival: Arrival) -> bool:
    """`conversation_covering`'s window and channel conditions, for one conversation."""
    end = conversation["closed_at"]
    if end is None:
        end = conversation["last_message_at"] + clock.delay
    channel = arrival.message.channel_id
    return conversation["started_at"] - clock.delay <= arrival.sent_at <= end and (
        channel is None or conversation["channel_id"] in (None, channel)
    )


def _target(clock: Clock, mine: list[dict[str, Any]], arrival: Arrival) -> Any:
    """The conversation the message appends to, "start" for a new one, None: general path."""
    covering = sorted((c for c in mine if _covers(clock, c, arrival)), key=_in_start_order)
    if not covering:
        return "start"
    started_before = [c for c in covering if c["started_at"] <= arrival.sent_at]
    chosen = started_before[-1] if started_before else covering[0]
    appendable = (
        chosen["closed_at"] is None
        and chosen["message_count"] > 0
        and chosen["last_message_at"] < arrival.sent_at
    )
    return chosen if appendable else None


def _in_start_order(conversation: dict[str, Any]) -> tuple[int, int, int]:
    """By start, then id; a conversation started in this run (no id yet) after stored ones."""
    if conversation["id"] is None:
        return (conversation["started_at"], 1, conversation["order"])
    return (conversation["started_at"], 0, conversation["id"])


def _open(mine: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`conversations.current_conversation` when the contact has an open conversation (all of
    them are read); None otherwise (the latest may be one the run did not read)."""
    open_ = [c for c in mine if c["closed_at"] is None]
    return max(open_, key=_in_start_order) if open_ else None


async def _waiting_statuses(
    session: AsyncSession, account_id: int, rows: list[tuple[Arrival, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """`statuses.apply_pending_statuses` for the new outbound messages: the best status that
    waited for each is set as it is inserted, and the waiting rows go."""
    wamids = {arrival.wamid for arrival, _ in rows if arrival.message.sender != "contact"}
    if not wamids:
        return {}
    waited = await take_waiting(session, account_id, wamids)
    return {wamid: message_columns(status) for wamid, status in waited.items()}


def _close_overdue(clock: Clock, mine: list[dict[str, Any]], until: int) -> list[dict[str, Any]]:
    """`conversations.close_overdue` of one contact, in memory."""
    closed = []
    for conversation in mine:
        open_ = (
            conversation["status"] in (Status.OPEN, Status.PENDING)
            and conversation["closed_at"] is None
        )
        if open_ and conversation["last_message_at"] <= until - clock.delay:
            _close(clock, conversation)
            closed.append(conversation)
    return closed


def _overdue(clock: Clock, conversation: dict[str, Any]) -> bool:
    return bool(conversation["last_message_at"] + clock.delay <= clock.now)


def _close(clock: Clock, conversation: dict[str, Any]) -> None:
    """Closed automatically at last message + delay."""
    conversation.update(
        closed_at=conversation["last_message_at"] + clock.delay,
        auto_closed=True,
        closed_by_id=None,
        status=Status.CLOSED,
    )


async def _stored_wamids(session: AsyncSession, account_id: int, wamids: set[str]) -> set[str]:
    found = await session.scalars(STORED, {"account_id": account_id, "wamids": wamids})
    return set(found.all())


async def _conversations(
    session: AsyncSession, clock: Clock, run: Sequence[Arrival | Tagging]
) -> dict[int, list[dict[str, Any]]]:
    """Each contact's conversations that may cover one of the instants or be closed by a start:
    open ones, and those closed at or after the earliest instant. Locked (FOR UPDATE) on
    PostgreSQL, as the general path locks what it reads."""
    instants = [item.sent_at for item in run if isinstance(item, Arrival)]
    rows = await session.execute(
        CONVERSATIONS,
        {
            "account_id": clock.account_id,
            "contacts": {item.contact_id for item in run},
            "earliest": min(instants, default=clock.now + 1),  # no message: the open ones
        },
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows.mappings():
        found.setdefault(row["contact_id"], []).append(dict(row))
    return found


async def _insert_conversations(
    session: AsyncSession, clock: Clock, started: list[dict[str, Any]]
) -> None:
    """One INSERT of the run's new conversations, in their final state; their ids are set.
    A contact starts at most one conversation at an instant, which maps the ids back."""
    keys = await session.execute(
        INSERT_CONVERSATION,
        [
            {**{name: c[name] for name in STATE[1:]}, "account_id": clock.account_id}
            for c in started
        ],
    )
    ids = {(contact, at): key for key, contact, at in keys.all()}
    for conversation in started:
        conversation["id"] = ids[conversation["contact_id"], conversation["started_at"]]


def _tag_insert(session: AsyncSession) -> Any:
    return dialect_insert(session, ConversationTag).on_conflict_do_nothing()


STORED = select(MESSAGE.c.wamid).where(
    MESSAGE.c.account_id == bindparam("account_id"),
    one_of(MESSAGE.c.wamid, values_of("wamids", String())),
)
CONVERSATIONS = (
    select(*(CONVERSATION.c[name] for name in STATE))
    .where(
        CONVERSATION.c.account_id == bindparam("account_id"),
        one_of(CONVERSATION.c.contact_id, values_of("contacts", BigInteger())),
        or_(
            CONVERSATION.c.closed_at.is_(None),
            CONVERSATION.c.closed_at >= bindparam("earliest"),
        ),
    )
    .order_by(CONVERSATION.c.contact_id, CONVERSATION.c.id)
    .with_for_update()
)
INSERT_CONVERSATION = CONVERSATION.insert().returning(
    CONVERSATION.c.id, CONVERSATION.c.contact_id, CONVERSATION.c.started_at
)
UPDATE_CONVERSATION = (
    update(CONVERSATION)
    .where(CONVERSATION.c.account_id == bindparam("account"), CONVERSATION.c.id == bindparam("key"))
    .values({name: bindparam(name) for name in CHANGED})
)
