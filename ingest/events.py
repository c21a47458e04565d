"""Inbox events (`POST /v1/events`): validation of a batch, then its all-or-nothing application."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import bulk, conversations
from ingest.contacts import (
    find_tag,
    insert_for,
    lock_contacts,
    normalize_email,
    normalize_phone,
    normalize_tag,
    rename_contact,
    tag_contact,
    untag_contact,
    upsert_agent,
    upsert_agents,
    upsert_tag,
    upsert_tags,
)
from ingest.conversations import Clock, NewMessage
from models import Contact, ContactTag, Conversation, ConversationTag, IngestedEvent
from models.db import now, plausible_instant
from models.errors import BadInput
from models.ids import parse_id

MAX_EVENTS = 1000
MAX_TAGS = 100  # per conversation and per contact: bounds what one tagging costs


def _instant(value: Any) -> int:
    """Epoch seconds from an integer or an ISO 8601 instant with an offset ("...Z")."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 instant with offset or epoch seconds")
    if isinstance(value, int):
        instant = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 instant like 2026-11-24T09:30:00Z") from None
        if moment.tzinfo is None:
            raise ValueError("needs a UTC offset, like 2026-11-24T09:30:00Z")
        instant = int(moment.timestamp())
    else:
        raise ValueError("must be an ISO 8601 instant with offset or epoch seconds")
    if instant < 0:
        raise ValueError("is before 1970-01-01")
    if not plausible_instant(instant):
        raise ValueError("is more than a day in the future")
    return instant


def _conversation_id(value: Any) -> int:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    key = parse_id(text) if isinstance(text, str) else None
    if key is None:
        raise ValueError("must be a conversation id")
    return key


Instant = Annotated[int, BeforeValidator(_instant)]
Phone = Annotated[str, Field(max_length=40), AfterValidator(normalize_phone)]
Email = Annotated[str, Field(max_length=320), AfterValidator(normalize_email)]
TagName = Annotated[str, AfterValidator(normalize_tag)]
Name = Annotated[str | None, Field(default=None, max_length=200)]
ConversationId = Annotated[int, BeforeValidator(_conversation_id)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    type: str
    at: Instant

    def problems(self) -> list[tuple[str, str]]:
        """Rules across fields, as (field, reason)."""
        return []


class AgentUpserted(_Event):
    type: Literal["agent.upserted"]
    email: Email
    name: Name


class ContactUpserted(_Event):
    type: Literal["contact.upserted"]
    phone: Phone
    name: Name


class ContactTagged(_Event):
    type: Literal["contact.tagged", "contact.untagged"]
    phone: Phone
    tag: TagName


class ConversationStarted(_Event):
    type: Literal["conversation.started"]
    phone: Phone
    source: Literal["FLOW", "INBOX"]
    agent_email: Email | None = Field(default=None, alias="agentEmail")

    def problems(self) -> list[tuple[str, str]]:
        if self.source == "INBOX" and self.agent_email is None:
            return [("agentEmail", "is required to start an INBOX conversation")]
        if self.source == "FLOW" and self.agent_email is not None:
            return [("agentEmail", "is only for INBOX conversations (started by an agent)")]
        return []


class MessageSent(_Event):
    type: Literal["message.sent"]
    phone: Phone
    message_id: str = Field(alias="messageId", min_length=1, max_length=512)
    agent_email: Email | None = Field(default=None, alias="agentEmail")
    text: str | None = Field(default=None, max_length=4096)


class _ConversationEvent(_Event):
    """Addresses the contact's current conversation by `phone`, or one by `conversationId`."""

    phone: Phone | None = None
    conversation_id: ConversationId | None = Field(default=None, alias="conversationId")

    def problems(self) -> list[tuple[str, str]]:
        if (self.phone is None) == (self.conversation_id is None):
            return [("phone", "give either phone or conversationId")]
        return []


class ConversationAssigned(_ConversationEvent):
    type: Literal["conversation.assigned"]
    agent_email: Email | None = Field(default=None, alias="agentEmail")


class ConversationTagged(_ConversationEvent):
    type: Literal["conversation.tagged", "conversation.untagged"]
    tag: TagName


class ConversationClosed(_ConversationEvent):
    type: Literal["conversation.closed"]
    agent_email: Email | None = Field(default=None, alias="agentEmail")


class ConversationRated(_ConversationEvent):
    type: Literal["conversation.rated"]
    rating: int = Field(ge=1, le=5, strict=True)


Event = Annotated[
    AgentUpserted
    | ContactUpserted
    | ContactTagged
    | ConversationStarted
    | MessageSent
    | ConversationAssigned
    | ConversationTagged
    | ConversationClosed
    | ConversationRated,
    Field(discriminator="type"),
]
EVENT = TypeAdapter(Event)
CREATES_CONTACT = (ContactUpserted, ContactTagged, ConversationStarted, MessageSent)
EVENT_TYPES = (
    "agent.upserted, contact.upserted, contact.tagged, contact.untagged, conversation.started, "
    "message.sent, conversation.assigned, conversation.tagged, conversation.untagged, "
    "conversation.closed, conversation.rated"
)


@dataclass(frozen=True)
class EventError:
    index: int | None
    field: str
    reason: str


class BatchRejected(Exception):
    """The batch is invalid; nothing of it is stored (HTTP 422)."""

    def __init__(self, errors: list[EventError]) -> None:
        super().__init__(f"{len(errors)} invalid event(s)")
        self.errors = errors


@dataclass(frozen=True)
class BatchResult:
    stored: list[str]
    duplicates: list[str]


# --- validation


def validate_batch(document: Any) -> list[_Event]:
    """The events of a request body; raises BatchRejected with every problem found."""
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BatchRejected([EventError(None, "events", 'body must be {"events": [...]}')])
    extra = sorted(set(document) - {"events"})
    if extra:
        raise BatchRejected([EventError(None, extra[0], "is not a field of the body")])
    raw_events = document["events"]
    if len(raw_events) > MAX_EVENTS:
        raise BatchRejected([EventError(None, "events", f"at most {MAX_EVENTS} events per batch")])
    events: list[_Event] = []
    errors: list[EventError] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_events):
        with_nul = _fields_with_nul(raw)
        if with_nul:
            errors.extend(EventError(index, name, NUL_REASON) for name in with_nul)
            continue
        try:
            event: _Event = EVENT.validate_python(raw)
        except ValidationError as exc:
            errors.extend(_event_errors(index, exc))
            continue
        errors.extend(EventError(index, name, reason) for name, reason in event.problems())
        if event.id in first_index:
            errors.append(
                EventError(index, "id", f"repeats the id of event {first_index[event.id]}")
            )
        first_index.setdefault(event.id, index)
        events.append(event)
    if errors:
        raise BatchRejected(errors)
    return events


NUL_REASON = "must not contain NUL (U+0000) characters"


def _fields_with_nul(raw: Any) -> list[str]:
    """The fields whose text holds U+0000, which PostgreSQL text cannot store: refused by name
    on every engine rather than failing there."""
    if not isinstance(raw, dict):
        return []
    return [str(name) for name, value in raw.items() if isinstance(value, str) and "\x00" in value]


def _event_errors(index: int, error: ValidationError) -> list[EventError]:
    return [_event_error(index, problem) for problem in error.errors(include_url=False)]


def _event_error(index: int, problem: Any) -> EventError:
    kind, location = problem["type"], [str(part) for part in problem["loc"]]
    if kind == "union_tag_not_found":
        return EventError(index, "type", f"is required; one of {EVENT_TYPES}")
    if kind == "union_tag_invalid":
        given = problem["input"].get("type")
        return EventError(index, "type", f"unknown event type {given!r}; one of {EVENT_TYPES}")
    if kind == "model_attributes_type":
        return EventError(index, "event", "must be a JSON object")
    field = ".".join(location[1:]) or "event"
    return EventError(index, field, _reason(kind, problem["msg"], location[0]))


def _reason(kind: str, message: str, event_type: str) -> str:
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not a field of {event_type} events"
    return message.removeprefix("Value error, ")


# --- application


async def apply_batch(
    session: AsyncSession, account_id: int, events: Sequence[_Event], *, in_bulk: bool = True
) -> BatchResult:
    """Store the events not stored before, in order, in the caller's transaction; raises
    BatchRejected (and the caller rolls back) when an event names something that does not exist.
    Consecutive message.sent events, and conversation.tagged events naming a phone, are folded in
    bulk (`ingest.bulk`); `in_bulk=False` records each through the general path (the reference
    the property tests compare with)."""
    clock = await conversations.clock_of(session, account_id)
    fresh = await _claim_ids(session, account_id, events)
    contact_ids = await _lock_batch_contacts(
        session, account_id, [e for e in events if e.id in fresh]
    )
    if in_bulk:
        await _upsert_named(session, account_id, [e for e in events if e.id in fresh])
    errors: list[EventError] = []
    tagged: Tagged = {}
    run: list[bulk.Arrival | bulk.Tagging] = []  # consecutive foldable events, folded together
    for index, event in enumerate(events):
        if event.id not in fresh:
            continue
        if isinstance(event, MessageSent):
            run.append(await _arrival(session, clock, contact_ids, index, event))
            if not in_bulk:
                errors += await _store_run(session, clock, contact_ids, run, tagged, in_bulk=False)
            continue
        if in_bulk and _foldable(event, contact_ids):
            assert isinstance(event, ConversationTagged) and event.phone is not None
            tag_id = await upsert_tag(session, clock.account_id, "conversation", event.tag)
            run.append(bulk.Tagging(index, contact_ids[event.phone], tag_id, origin=event))
            continue
        errors += await _store_run(session, clock, contact_ids, run, tagged)
        errors += await _apply_noted(session, clock, contact_ids, index, event, tagged)
    errors += await _store_run(session, clock, contact_ids, run, tagged)
    errors += await _over_the_tag_limit(session, account_id, tagged)
    if errors:
        raise BatchRejected(errors)
    return BatchResult(
        stored=[e.id for e in events if e.id in fresh],
        duplicates=[e.id for e in events if e.id not in fresh],
    )


async def _upsert_named(session: AsyncSession, account_id: int, events: Sequence[_Event]) -> None:
    """The agents and tags the events name, created in the order the events would create them
    one by one (ids as they would get them), a few statements for the whole batch."""
    emails: list[str] = []
    tags: list[tuple[str, str]] = []
    for event in events:
        email = (
            event.email if isinstance(event, AgentUpserted) else getattr(event, "agent_email", None)
        )
        if email is not None:
            emails.append(email)
        if isinstance(event, ContactTagged | ConversationTagged) and event.type.endswith(".tagged"):
            tags.append((event.type.partition(".")[0], event.tag))
    await upsert_agents(session, account_id, emails)
    await upsert_tags(session, account_id, tags)


async def _claim_ids(session: AsyncSession, account_id: int, events: Sequence[_Event]) -> set[str]:
    """Record the event ids; the ones already recorded (by an earlier batch) are duplicates."""
    if not events:
        return set()
    received = now()
    rows = [
        {"account_id": account_id, "event_id": e.id, "type": e.type, "received_at": received}
        for e in events
    ]
    dialect = session.get_bind().dialect.name
    return set((await session.scalars(_claim_statement(dialect), rows)).all())


@lru_cache(maxsize=4)
def _claim_statement(dialect: str) -> Any:
    """INSERT of the event ids, skipping those recorded before, returning the new ones: one
    statement for any number of rows (SQLAlchemy sends them as multi-row VALUES)."""
    table = IngestedEvent.__table__  # type: ignore[attr-defined]
    return insert_for(dialect, table).on_conflict_do_nothing().returning(table.c.event_id)


async def _lock_batch_contacts(
    session: AsyncSession, account_id: int, events: Sequence[_Event]
) -> dict[str, int]:
    """Lock every contact the batch touches, once and in one order (see lock_contacts)."""
    phones = {e.phone for e in events if getattr(e, "phone", None)}  # type: ignore[attr-defined]
    creating = {
        e.phone for e in events if isinstance(e, CREATES_CONTACT) and e.type != "contact.untagged"
    }
    conversation_ids = {
        e.conversation_id for e in events if isinstance(e, _ConversationEvent) and e.conversation_id
    }
    if conversation_ids:
        rows = await session.scalars(
            select(Contact.phone)
            .join(
                Conversation,
                (col(Conversation.account_id) == col(Contact.account_id))
                & (col(Conversation.contact_id) == col(Contact.id)),
            )
            .where(
                Conversation.account_id == account_id,
                col(Conversation.id).in_(conversation_ids),
            )
        )
        phones |= set(rows.all())
    return await lock_contacts(session, account_id, phones, create=creating)


# What a batch tagged, by ("conversation" | "contact", id): the index of the last event that did.
Tagged = dict[tuple[str, int], int]


async def _apply_noted(
    session: AsyncSession,
    clock: Clock,
    contact_ids: dict[str, int],
    index: int,
    event: _Event,
    tagged: Tagged,
) -> list[EventError]:
    """Apply the batch's `index`th event, noting in `tagged` what it tagged; its refusal, if
    any."""
    try:
        target = await _apply(session, clock, contact_ids, event)
    except BadInput as exc:
        return [EventError(index, exc.field, exc.reason)]
    if target is not None:
        tagged[target] = index
    return []


async def _apply(
    session: AsyncSession, clock: Clock, contact_ids: dict[str, int], event: _Event
) -> tuple[str, int] | None:
    """Apply one event; what it tagged, if it did (for the tag limits)."""
    account_id = clock.account_id
    match event:
        case AgentUpserted():
            await upsert_agent(session, account_id, event.email, event.name)
        case ContactUpserted():
            if event.name is not None:
                await rename_contact(
                    session, clock.account_id, contact_ids[event.phone], event.name
                )
        case ContactTagged(type="contact.tagged"):
            await tag_contact(session, account_id, contact_ids[event.phone], event.tag)
            return ("contact", contact_ids[event.phone])
        case ContactTagged():
            if event.phone in contact_ids:
                await untag_contact(session, account_id, contact_ids[event.phone], event.tag)
        case ConversationStarted():
            agent_id = await _agent(session, clock, event.agent_email)
            await conversations.start_conversation(
                session, clock, contact_ids[event.phone], event.source, event.at, agent_id
            )
        case _ConversationEvent():
            conversation = await _addressed(session, clock, contact_ids, event)
            await _apply_to_conversation(session, clock, conversation, event)
            if isinstance(event, ConversationTagged) and event.type == "conversation.tagged":
                assert conversation.id is not None
                return ("conversation", conversation.id)
    return None


async def _over_the_tag_limit(
    session: AsyncSession, account_id: int, tagged: Tagged
) -> list[EventError]:
    """An error on the last event that tagged each conversation or contact now holding more than
    MAX_TAGS tags (the whole batch is then refused, before the aggregates are brought up to
    date)."""
    errors = []
    for kind, table, key in (
        ("conversation", ConversationTag, ConversationTag.conversation_id),
        ("contact", ContactTag, ContactTag.contact_id),
    ):
        ids = {target for what, target in tagged if what == kind}
        if not ids:
            continue
        counted = col(key)
        crowded = await session.scalars(
            select(counted)
            .select_from(table)
            .where(col(table.account_id) == account_id, counted.in_(ids))
            .group_by(counted)
            .having(func.count() > MAX_TAGS)
        )
        for target in crowded:
            reason = f"a {kind} has at most {MAX_TAGS} tags; untag one first"
            errors.append(EventError(tagged[kind, target], "tag", reason))
    return sorted(errors, key=lambda error: error.index or 0)


async def _arrival(
    session: AsyncSession, clock: Clock, contact_ids: dict[str, int], index: int, event: MessageSent
) -> bulk.Arrival:
    agent_id = await _agent(session, clock, event.agent_email)
    message = NewMessage(
        contact_id=contact_ids[event.phone],
        channel_id=None,
        wamid=event.message_id,
        sender="agent" if agent_id is not None else "automation",
        sent_at=event.at,
        agent_id=agent_id,
        body=event.text,
    )
    return bulk.Arrival(index, message)


def _foldable(event: _Event, contact_ids: dict[str, int]) -> bool:
    """Events the bulk fold takes besides message.sent: tagging a contact's conversation."""
    return (
        isinstance(event, ConversationTagged)
        and event.type == "conversation.tagged"
        and event.conversation_id is None
        and event.phone in contact_ids
    )


async def _store_run(
    session: AsyncSession,
    clock: Clock,
    contact_ids: dict[str, int],
    run: list[bulk.Arrival | bulk.Tagging],
    tagged: Tagged,
    *,
    in_bulk: bool = True,
) -> list[EventError]:
    """Store the run, in bulk where it can be (`ingest.bulk`), the rest one by one, in order
    (all of it one by one without `in_bulk`); `run` is emptied, what it tagged noted in
    `tagged`. The refusals of the rest."""
    if not run:
        return []
    left: list[bulk.Arrival | bulk.Tagging] = list(run)
    if in_bulk:
        folded = await bulk.fold(session, clock, run)
        left = folded.general
        tagged.update((("conversation", key), item) for item, key in folded.tagged)
    run.clear()
    errors = []
    for item in left:
        if isinstance(item, bulk.Arrival):
            await conversations.record_message(session, clock, item.message)
            continue
        errors += await _apply_noted(session, clock, contact_ids, item.item, item.origin, tagged)
    return errors


async def _apply_to_conversation(
    session: AsyncSession, clock: Clock, conversation: Conversation, event: _ConversationEvent
) -> None:
    match event:
        case ConversationAssigned():
            agent_id = await _agent(session, clock, event.agent_email)
            await conversations.assign(session, clock, conversation, agent_id)
        case ConversationTagged(type="conversation.tagged"):
            tag_id = await upsert_tag(session, clock.account_id, "conversation", event.tag)
            await conversations.tag(session, clock, conversation, tag_id)
        case ConversationTagged():
            found = await find_tag(session, clock.account_id, "conversation", event.tag)
            if found is not None:
                await conversations.untag(session, clock, conversation, found)
        case ConversationClosed():
            agent_id = await _agent(session, clock, event.agent_email)
            await conversations.close(session, clock, conversation, event.at, agent_id)
        case ConversationRated():
            await conversations.rate(session, clock, conversation, event.rating, event.at)


async def _addressed(
    session: AsyncSession, clock: Clock, contact_ids: dict[str, int], event: _ConversationEvent
) -> Conversation:
    if event.conversation_id is not None:
        found = await conversations.conversation_by_id(session, clock, event.conversation_id)
        if found is None:
            raise BadInput("conversationId", "no conversation with this id in the account")
        return found
    assert event.phone is not None
    contact_id = contact_ids.get(event.phone)
    found = None
    if contact_id is not None:
        found = await conversations.current_conversation(session, clock, contact_id)
    if found is None:
        raise BadInput("phone", "this contact has no conversation")
    return found


async def _agent(session: AsyncSession, clock: Clock, email: str | None) -> int | None:
    if email is None:
        return None
    return await upsert_agent(session, clock.account_id, email)
