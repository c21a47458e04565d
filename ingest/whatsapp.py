"""WhatsApp Cloud API webhooks: payload parsing, signature check and storing (Meta's format)."""

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import bulk, buttons, changes, conversations
from ingest.contacts import lock_contacts, upsert_agent
from ingest.conversations import Clock, NewMessage
from ingest.statuses import DeliveryStatus, apply_status, pricing_of
from models import Channel
from models.db import plausible_instant
from models.ids import MAX_ID

log = logging.getLogger(__name__)

MESSAGE_TYPES = {
    "text", "image", "video", "document", "audio", "voice", "sticker", "reaction", "location",
    "contacts", "order", "interactive", "button", "system", "unsupported",
}  # fmt: skip
MAX_BODY_CHARS = 4096
# The webhook fields Meta documents besides `messages`: answered 200, not stored, counted by
# name in /metrics (any other name as `other`, so a sender cannot grow the label set).
KNOWN_FIELDS = frozenset(
    {
        "account_alerts", "account_review_update", "account_settings_update", "account_update",
        "automatic_events", "business_capability_update", "business_status_update", "calls",
        "flows", "history", "message_echoes", "message_template_components_update",
        "message_template_quality_update", "message_template_status_update",
        "partner_solutions", "payment_configuration_update", "phone_number_name_update",
        "phone_number_quality_update", "security", "smb_app_state_sync", "smb_message_echoes",
        "template_category_update", "tracking_events", "user_preferences",
    }
)  # fmt: skip
SIGNATURE_PREFIX = "sha256="


class MalformedPayload(ValueError):
    """A body that is not a webhook payload (HTTP 400); the message says what is wrong."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Profile(_Lenient):
    name: str | None = None


class WaContact(_Lenient):
    wa_id: str | None = None
    profile: Profile | None = None


class WaError(_Lenient):
    code: int | None = None
    title: str | None = None


class WaMessage(_Lenient):
    id: str = Field(min_length=1, max_length=512)
    from_: str = Field(alias="from", pattern=r"^[0-9]{6,15}$")
    timestamp: int
    type: str = "unsupported"
    referral: dict[str, Any] | None = None


class WaEcho(_Lenient):
    """A message the business sent from the WhatsApp Business app (`smb_message_echoes`)."""

    id: str = Field(min_length=1, max_length=512)
    to: str = Field(pattern=r"^[0-9]{6,15}$")
    timestamp: int
    type: str = "unsupported"


class WaStatus(_Lenient):
    id: str = Field(min_length=1, max_length=512)
    status: str
    timestamp: int
    errors: list[WaError] = []
    # Read leniently (`ingest.statuses.pricing_of`): a pricing we cannot read is left out, the
    # status is still applied.
    pricing: Any = None


class Metadata(_Lenient):
    phone_number_id: str


class MessagesValue(_Lenient):
    metadata: Metadata
    contacts: list[WaContact] = []
    messages: list[WaMessage] = []
    statuses: list[WaStatus] = []


class EchoesValue(_Lenient):
    metadata: Metadata
    message_echoes: list[WaEcho] = []


class Change(_Lenient):
    field: str
    value: dict[str, Any] = {}


class Entry(_Lenient):
    changes: list[Change] = []


class Payload(_Lenient):
    entry: list[Entry]


@dataclass(frozen=True)
class Batch:
    """The `messages` changes of a payload, by the phone_number_id they name."""

    changes: list[tuple[str, MessagesValue]]
    implausible: int = 0  # messages and statuses left out: instants outside plausible_instant
    ignored_fields: dict[str, int] = field(default_factory=dict)  # other fields' changes, by field
    echoes: list[tuple[str, EchoesValue]] = field(default_factory=list)  # smb_message_echoes

    @property
    def numbers(self) -> set[str]:
        return {number for number, _ in self.changes} | {number for number, _ in self.echoes}

    @property
    def items(self) -> int:
        """Messages, statuses and echoes: what the writer counts."""
        changed = sum(len(value.messages) + len(value.statuses) for _, value in self.changes)
        return changed + sum(len(value.message_echoes) for _, value in self.echoes)


@dataclass
class Outcome:
    messages: int = 0
    duplicates: int = 0
    statuses: int = 0
    changes: int = 0  # edits and revokes (`ingest.changes`), applied or waiting
    ignored_numbers: set[str] = field(default_factory=set)


def parse(body: bytes) -> Batch:
    """The payload's `messages` and `smb_message_echoes` changes; other fields (account
    updates...) are left out, counted by field."""
    try:
        document = json.loads(body)
        if b"\\u0000" in body:  # JSON can only spell U+0000 as this escape
            document = _without_nul(document)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, an integer of 4,301+ digits
        raise MalformedPayload(f"body is not JSON: {exc}") from exc
    changes: list[tuple[str, MessagesValue]] = []
    echoes: list[tuple[str, EchoesValue]] = []
    ignored: dict[str, int] = {}
    try:
        for entry in Payload.model_validate(document).entry:
            for change in entry.changes:
                if change.field == "messages":
                    value = MessagesValue.model_validate(change.value)
                    changes.append((value.metadata.phone_number_id, value))
                elif change.field == "smb_message_echoes":
                    echoed = EchoesValue.model_validate(change.value)
                    echoes.append((echoed.metadata.phone_number_id, echoed))
                else:
                    name = change.field if change.field in KNOWN_FIELDS else "other"
                    ignored[name] = ignored.get(name, 0) + 1
    except ValidationError as exc:
        raise MalformedPayload(f"not a WhatsApp webhook payload: {_describe(exc)}") from exc
    batch = _plausible(changes)
    kept_echoes, implausible = [], batch.implausible
    for number, sent in echoes:
        plausible = [echo for echo in sent.message_echoes if plausible_instant(echo.timestamp)]
        implausible += len(sent.message_echoes) - len(plausible)
        kept_echoes.append((number, sent.model_copy(update={"message_echoes": plausible})))
    return Batch(batch.changes, implausible, ignored, kept_echoes)


def _plausible(changes: list[tuple[str, MessagesValue]]) -> Batch:
    """The batch without the messages and statuses whose timestamp is before 1970 or more than
    a day ahead (`models.db.plausible_instant`): they are skipped, not refused, so that Meta
    does not retry the rest of the delivery for ever."""
    kept, implausible = [], 0
    for number, value in changes:
        messages = [m for m in value.messages if plausible_instant(m.timestamp)]
        statuses = [s for s in value.statuses if plausible_instant(s.timestamp)]
        dropped = len(value.messages) - len(messages) + len(value.statuses) - len(statuses)
        if dropped:
            implausible += dropped
            value = value.model_copy(update={"messages": messages, "statuses": statuses})
        kept.append((number, value))
    return Batch(kept, implausible)


def _without_nul(value: Any) -> Any:
    """The document with U+0000 removed from every key and string: PostgreSQL text cannot hold
    it, and a message Meta delivered is stored rather than refused for one character."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _describe(error: ValidationError) -> str:
    problems = error.errors(include_url=False)[:5]
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
        for problem in problems
    )


def signature_matches(body: bytes, header: str | None, app_secret: str) -> bool:
    """X-Hub-Signature-256 is "sha256=" + hex HMAC-SHA256 of the raw body with the app secret."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    # As bytes: any header byte (decoded as Latin-1) compares, and simply does not match.
    given = header[len(SIGNATURE_PREFIX) :].strip().lower().encode("latin-1", "replace")
    return hmac.compare_digest(expected.encode(), given)


async def channels_named(session: AsyncSession, numbers: set[str]) -> dict[str, Channel]:
    if not numbers:
        return {}
    rows = await session.scalars(select(Channel).where(col(Channel.phone_number_id).in_(numbers)))
    return {channel.phone_number_id: channel for channel in rows}


async def store(session: AsyncSession, batch: Batch, channels: dict[str, Channel]) -> Outcome:
    """Store the messages and statuses of every change that names a known number."""
    outcome = Outcome(ignored_numbers=batch.numbers - set(channels))
    for account_id in sorted({channel.account_id for channel in channels.values()}):
        clock = await conversations.clock_of(session, account_id)
        values = [
            value
            for number, value in batch.changes
            if number in channels and channels[number].account_id == account_id
        ]
        contact_ids = await _lock_senders(session, account_id, values)
        for number, value in batch.changes:
            channel = channels.get(number)
            if channel is not None and channel.account_id == account_id:
                await _store_change(session, clock, channel, value, contact_ids, outcome)
                outcome.changes += await _store_edits(session, account_id, value.messages)
        await _store_echoes_of(session, clock, batch, channels, outcome)
    return outcome


async def store_many(
    session: AsyncSession, deliveries: list[tuple[Batch, dict[str, Channel]]]
) -> list[Outcome]:
    """`store` for several deliveries in one transaction, in order: their inbound messages are
    folded in bulk (`ingest.bulk`), with the same result as storing one after the other."""
    inbound_wamids = {
        message.id
        for batch, _ in deliveries
        for _, value in batch.changes
        for message in value.messages
    }
    status_wamids = {
        status.id
        for batch, _ in deliveries
        for _, value in batch.changes
        for status in value.statuses
    }
    if inbound_wamids & status_wamids:  # a status about one of these: keep the exact order
        return [await store(session, batch, channels) for batch, channels in deliveries]
    outcomes = [
        Outcome(ignored_numbers=batch.numbers - set(channels)) for batch, channels in deliveries
    ]
    accounts = {channel.account_id for _, channels in deliveries for channel in channels.values()}
    for account_id in sorted(accounts):
        clock = await conversations.clock_of(session, account_id)
        mine = [
            (item, channels[number], value)
            for item, (batch, channels) in enumerate(deliveries)
            for number, value in batch.changes
            if number in channels and channels[number].account_id == account_id
        ]
        contact_ids = await _lock_senders(session, account_id, [value for _, _, value in mine])
        messages = []
        for item, channel, value in mine:
            assert channel.id is not None
            for message in _messages(value):
                received = _received(channel, contact_ids["+" + message.from_], message)
                messages.append(
                    bulk.Arrival(
                        item=item,
                        message=received,
                        general=bulk.needs_general_path(received.body, bool(message.referral)),
                        origin=(channel, message),
                    )
                )
            await _store_statuses(session, account_id, value, outcomes[item])
        folded = await bulk.fold(session, clock, messages)
        for done in folded.stored:
            outcomes[done.item].messages += 1
        for done in folded.duplicates:
            outcomes[done.item].duplicates += 1
        for left in folded.general:
            channel, original = left.origin
            await _store_message(
                session, clock, channel, left.contact_id, original, outcomes[left.item]
            )
        for item, _, value in mine:  # after every message: an edit may follow its original
            outcomes[item].changes += await _store_edits(session, account_id, value.messages)
        for item, (batch, channels) in enumerate(deliveries):
            await _store_echoes_of(session, clock, batch, channels, outcomes[item])
    return outcomes


async def _store_echoes_of(
    session: AsyncSession,
    clock: Clock,
    batch: Batch,
    channels: dict[str, Channel],
    outcome: Outcome,
) -> None:
    """The delivery's echoes on the clock's account's numbers: each a message of the number's
    business-app agent, with the rules of an agent's `message.sent`; their edits and revokes
    mark the original."""
    for number, value in batch.echoes:
        channel = channels.get(number)
        if channel is None or channel.account_id != clock.account_id:
            continue
        sent = [echo for echo in value.message_echoes if echo.type not in changes.KINDS]
        phones = {"+" + echo.to for echo in sent}
        contact_ids = await lock_contacts(session, clock.account_id, phones, phones)
        agent_id = await upsert_agent(session, clock.account_id, channel.echo_agent)
        for echo in sent:
            message = NewMessage(
                contact_id=contact_ids["+" + echo.to],
                channel_id=channel.id,
                wamid=echo.id,
                sender="agent",
                sent_at=echo.timestamp,
                agent_id=agent_id,
                type=type_of(echo),
                body=body_of(echo),
            )
            if await conversations.record_message(session, clock, message) is None:
                outcome.duplicates += 1
            else:
                outcome.messages += 1
        outcome.changes += await _store_edits(session, clock.account_id, value.message_echoes)


def _messages(value: MessagesValue) -> list[WaMessage]:
    """The change's messages but its edits and revokes, which are not messages of their own."""
    return [message for message in value.messages if message.type not in changes.KINDS]


def changes_of(messages: Sequence[WaMessage | WaEcho]) -> list[changes.MessageChange]:
    """The edits and revokes among these messages, as changes of their original message (one
    that names no original is ignored)."""
    found = []
    for message in messages:
        if message.type not in changes.KINDS:
            continue
        original = _part(message, message.type).get("original_message_id")
        if isinstance(original, str) and original:
            found.append(
                changes.MessageChange(original, changes.KINDS[message.type], message.timestamp)
            )
        else:
            log.info("ignoring %s %s: it names no original message", message.type, message.id)
    return found


async def _store_edits(
    session: AsyncSession, account_id: int, messages: Sequence[WaMessage | WaEcho]
) -> int:
    """Apply the edits and revokes among these messages (or echoes); returns how many."""
    found = changes_of(messages)
    await changes.apply_changes(session, account_id, found)
    return len(found)


async def _lock_senders(
    session: AsyncSession, account_id: int, values: list[MessagesValue]
) -> dict[str, int]:
    """The contacts who sent these messages, locked (created when new, renamed by the profile
    name their delivery gives, the last one winning): phone -> id."""
    phones = {"+" + message.from_ for value in values for message in _messages(value)}
    names = {
        "+" + contact.wa_id: contact.profile.name
        for value in values
        for contact in value.contacts
        if contact.wa_id and contact.profile and contact.profile.name
    }
    return await lock_contacts(session, account_id, phones, phones, names)


async def _store_change(
    session: AsyncSession,
    clock: Clock,
    channel: Channel,
    value: MessagesValue,
    contact_ids: dict[str, int],
    outcome: Outcome,
) -> None:
    for message in _messages(value):
        contact_id = contact_ids["+" + message.from_]
        await _store_message(session, clock, channel, contact_id, message, outcome)
    await _store_statuses(session, clock.account_id, value, outcome)


async def _store_statuses(
    session: AsyncSession, account_id: int, value: MessagesValue, outcome: Outcome
) -> None:
    for status in value.statuses:
        error = status.errors[0] if status.errors else None
        await apply_status(
            session,
            account_id,
            DeliveryStatus(
                wamid=status.id,
                status=status.status,
                at=status.timestamp,
                error_code=_error_code(error),
                error_title=error.title if error else None,
                pricing=pricing_of(status.pricing, status.timestamp),
            ),
        )
        outcome.statuses += 1


async def _store_message(
    session: AsyncSession,
    clock: Clock,
    channel: Channel,
    contact_id: int,
    message: WaMessage,
    outcome: Outcome,
) -> None:
    received = _received(channel, contact_id, message)
    text = received.body
    conversation = await conversations.record_message(session, clock, received)
    if conversation is None:
        outcome.duplicates += 1
        return
    outcome.messages += 1
    if message.referral:
        referral = {key: _text(message.referral.get(key)) for key in REFERRAL_KEYS}
        await conversations.keep_referral(session, clock, conversation, referral)
    await buttons.attribute(session, clock, conversation, text, message.timestamp)


def _error_code(error: WaError | None) -> int | None:
    """Meta's error code, kept when an INTEGER column can hold it (else the title says it)."""
    if error is None or error.code is None or not -MAX_ID <= error.code <= MAX_ID:
        return None
    return error.code


def _received(channel: Channel, contact_id: int, message: WaMessage) -> NewMessage:
    """A contact's message as the conversation rules take it."""
    return NewMessage(
        contact_id=contact_id,
        channel_id=channel.id,
        wamid=message.id,
        sender="contact",
        sent_at=message.timestamp,
        type=type_of(message),
        body=body_of(message),
    )


REFERRAL_KEYS = ("source_url", "source_id", "source_type", "headline")


def type_of(message: WaMessage | WaEcho) -> str:
    """The stored type: Meta's, `voice` for a voice note, `unsupported` for any unknown type."""
    if message.type == "audio" and _part(message, "audio").get("voice") is True:
        return "voice"
    return message.type if message.type in MESSAGE_TYPES else "unsupported"


def body_of(message: WaMessage | WaEcho) -> str | None:
    """The human-readable text a message carries (text, caption, choice, emoji...), if any."""
    part = _part(message, message.type)
    match message.type:
        case "text":
            text = part.get("body")
        case "image" | "video" | "document" | "audio" | "sticker":
            text = part.get("caption")
        case "reaction":
            text = part.get("emoji")
        case "location":
            text = part.get("name") or part.get("address")
        case "contacts":
            names = [_part_of(card, "name").get("formatted_name") for card in _cards(message)]
            text = ", ".join(name for name in names if isinstance(name, str)) or None
        case "order" | "button":
            text = part.get("text")
        case "interactive":
            reply = _part_of(part, str(part.get("type")))
            text = reply.get("title") or reply.get("body")
        case "system":
            text = part.get("body")
        case _:
            text = None
    return _text(text)


def _part(message: WaMessage | WaEcho, key: str) -> dict[str, Any]:
    return _part_of(message.model_extra or {}, key)


def _part_of(container: Any, key: str) -> dict[str, Any]:
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, dict) else {}


def _cards(message: WaMessage | WaEcho) -> list[Any]:
    cards = (message.model_extra or {}).get("contacts")
    return cards if isinstance(cards, list) else []


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:MAX_BODY_CHARS]
