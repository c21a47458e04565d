"""Row factories: datasets written straight into the tables, with conversation rows that obey the
semantics ingestion maintains (README: Conversation rules), so report tests depend on the tables
alone.

    async with building(engine, account.id) as make:
        alice = await make.agent("alice@acme.test", "Alice")
        lea = await make.contact("+33600000001", tags=["VIP"])
        await make.conversation(lea, [inbound(at("2026-03-27 09:00", PARIS)), reply(...)])

A conversation's figures (started_at, first_inbound_at, first_response_at, last_message_at,
counters, direction, source, status, rating) are derived from the messages and events given,
exactly as ingestion derives them; only what cannot be derived is passed explicitly.
"""

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest.aggregates import measure_written, rebuild_aggregates
from ingest.conversations import NewMessage
from ingest.rules import built, never_closing
from models import (
    Agent,
    Channel,
    Contact,
    ContactTag,
    Conversation,
    ConversationTag,
    Message,
    Tag,
    WidgetButton,
    WidgetClick,
)
from models.db import now, transaction
from models.enums import Direction, Source, Status

_serial = itertools.count(1)


def at(text: str, zone: str = "UTC") -> int:
    """A wall-clock time in a zone ("2026-03-29 03:30") as UTC epoch seconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp())


@dataclass(frozen=True)
class Msg:
    """A message to put in a conversation: who sent it and when."""

    at: int
    direction: str  # INBOUND | OUTBOUND
    sender: str  # contact | agent | automation
    agent: Agent | None = None
    status: str | None = "delivered"  # its delivery status (outbound only); None: none yet
    error: tuple[int, str] | None = None  # a failed one's error code and title
    pricing: tuple[str, bool] | None = None  # the category and billable flag a status gave


def with_status(message: Msg, status: str | None, error: tuple[int, str] | None = None) -> Msg:
    """The outbound message holding another delivery status (`failed`: with its error)."""
    return replace(message, status=status, error=error)


def priced(message: Msg, category: str, billable: bool = True) -> Msg:
    """The outbound message that a status priced in `category` (at the instant it was sent)."""
    return replace(message, pricing=(category, billable))


def inbound(instant: int) -> Msg:
    """A message from the contact."""
    return Msg(instant, "INBOUND", "contact")


def reply(instant: int, agent: Agent) -> Msg:
    """A message from a human agent."""
    return Msg(instant, "OUTBOUND", "agent", agent)


def automation(instant: int) -> Msg:
    """A message from an automation (flow): outbound, never a response."""
    return Msg(instant, "OUTBOUND", "automation")


class Factory:
    """Adds rows for one account through one session; tags are created on first use."""

    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id
        self._tags: dict[tuple[str, str], Tag] = {}
        self._channel: Channel | None = None

    async def _add(self, row: object) -> None:
        self.session.add(row)
        await self.session.flush()

    async def agent(self, email: str, name: str | None = None) -> Agent:
        row = Agent(account_id=self.account_id, email=email.lower(), name=name)
        await self._add(row)
        return row

    async def tag(self, kind: str, name: str) -> Tag:
        """The account's tag of this kind and name (case-insensitive), created if new."""
        key = (kind, name.lower())
        if key not in self._tags:
            found = (
                await self.session.exec(
                    select(Tag).where(
                        Tag.account_id == self.account_id,
                        Tag.kind == kind,
                        Tag.name_key == name.lower(),
                    )
                )
            ).first()
            if found is None:
                found = Tag(account_id=self.account_id, kind=kind, name=name, name_key=name.lower())
                await self._add(found)
            self._tags[key] = found
        return self._tags[key]

    async def contact(
        self, phone: str, name: str | None = None, tags: Sequence[str] = ()
    ) -> Contact:
        row = Contact(account_id=self.account_id, phone=phone, wa_id=phone.lstrip("+"), name=name)
        await self._add(row)
        for tag_name in tags:
            tag = await self.tag("contact", tag_name)
            await self._add(
                ContactTag(account_id=self.account_id, contact_id=row.id, tag_id=tag.id)  # type: ignore[arg-type]
            )
        return row

    async def conversation(
        self,
        contact: Contact,
        messages: Sequence[Msg],
        *,
        source: str | None = None,
        started_at: int | None = None,
        assignee: Agent | None = None,
        tags: Sequence[str] = (),
        closed_at: int | None = None,
        closed_by: Agent | None = None,
        auto_close_seconds: int | None = None,
        ratings: Sequence[tuple[int, int]] = (),
    ) -> Conversation:
        """A conversation and its messages.

        `started_at` is an explicit `conversation.started` instant (kept when earlier than the
        first message); `source` defaults to who sent the first message. Closing: `closed_at`
        (by `closed_by`, or automatically when None), or `auto_close_seconds` after the last
        message (auto-closed). `ratings` are (instant, rating) events: the latest one wins.
        """
        ordered = sorted(messages, key=lambda message: message.at)
        if ordered:  # the figures ingestion keeps for these messages (ingest.rules)
            figures = built(
                never_closing(self.account_id, None),
                [
                    NewMessage(
                        contact_id=contact.id,  # type: ignore[arg-type]
                        channel_id=None,
                        wamid="",
                        sender=message.sender,
                        sent_at=message.at,
                        agent_id=None if message.agent is None else message.agent.id,
                    )
                    for message in ordered
                ],
            )
        else:  # started by an event, no message yet
            assert started_at is not None, "a conversation needs a message or a start"
            figures = {
                "contact_id": contact.id,
                "channel_id": None,
                "source": Source.INBOX,
                "direction": Direction.OUTBOUND,
                "status": Status.OPEN,
                "started_at": started_at,
                "last_message_at": started_at,
            }
        # What the builder decides beyond the messages: an earlier explicit start, the source,
        # the assignee, the closing and the rating.
        if started_at is not None and started_at < figures["started_at"]:
            figures["started_at"] = started_at
        figures["source_explicit"] = started_at is not None
        if source is not None:
            figures["source"] = source
        if auto_close_seconds is not None:
            closed_at, closed_by = figures["last_message_at"] + auto_close_seconds, None
        if closed_at is not None:
            figures.update(status=Status.CLOSED, closed_at=closed_at)
        latest_rating = max(ratings, default=None)
        figures.update(
            account_id=self.account_id,
            assignee_id=None if assignee is None else assignee.id,
            closed_by_id=None if closed_by is None else closed_by.id,
            auto_closed=closed_at is not None and closed_by is None,
            rating=None if latest_rating is None else latest_rating[1],
            rated_at=None if latest_rating is None else latest_rating[0],
        )
        row = Conversation(**figures)
        await self._add(row)
        for message in ordered:
            self.session.add(
                Message(
                    account_id=self.account_id,
                    conversation_id=row.id,  # type: ignore[arg-type]
                    wamid=f"wamid.test{next(_serial)}",
                    direction=message.direction,
                    sender=message.sender,
                    agent_id=None if message.agent is None else message.agent.id,
                    sent_at=message.at,
                    status=message.status if message.direction == "OUTBOUND" else None,
                    error_code=None if message.error is None else message.error[0],
                    error_title=None if message.error is None else message.error[1],
                    pricing_category=None if message.pricing is None else message.pricing[0],
                    billable=None if message.pricing is None else message.pricing[1],
                    pricing_at=None if message.pricing is None else message.at,
                )
            )
        for tag_name in tags:
            tag = await self.tag("conversation", tag_name)
            self.session.add(
                ConversationTag(account_id=self.account_id, conversation_id=row.id, tag_id=tag.id)  # type: ignore[arg-type]
            )
        await self.session.flush()
        return row

    async def channel(self) -> Channel:
        """The account's test WhatsApp number (created on first use)."""
        if self._channel is None:
            serial = next(_serial)
            self._channel = Channel(
                account_id=self.account_id,
                phone_number_id=f"pnid-{self.account_id}-{serial}",
                display_number=f"+3319900{serial:04d}",
                app_secret="test-app-secret",
                verify_token="test-verify-token",
            )
            await self._add(self._channel)
        return self._channel

    async def button(self, name: str, prefill: str = "") -> WidgetButton:
        channel = await self.channel()
        row = WidgetButton(
            account_id=self.account_id,
            channel_id=channel.id,  # type: ignore[arg-type]
            key=f"btn{self.account_id}x{next(_serial)}",
            name=name,
            prefill=prefill,
        )
        await self._add(row)
        return row

    async def click(
        self,
        button: WidgetButton,
        clicked_at: int,
        *,
        referrer: str | None = None,
        utm_campaign: str | None = None,
        utm_medium: str | None = None,
        utm_source: str | None = None,
        utm_term: str | None = None,
        utm_content: str | None = None,
        conversation: Conversation | None = None,
    ) -> WidgetClick:
        """A click; `conversation` attributes it (both rows point at each other)."""
        row = WidgetClick(
            account_id=self.account_id,
            button_id=button.id,  # type: ignore[arg-type]
            clicked_at=clicked_at,
            referrer=referrer,
            utm_campaign=utm_campaign,
            utm_medium=utm_medium,
            utm_source=utm_source,
            utm_term=utm_term,
            utm_content=utm_content,
            ref_code=f"REF{next(_serial):06d}",
            conversation_id=None if conversation is None else conversation.id,
        )
        await self._add(row)
        if conversation is not None:
            conversation.widget_click_id = row.id
            self.session.add(conversation)
            await self.session.flush()
        return row


@asynccontextmanager
async def building(engine: AsyncEngine, account_id: int) -> AsyncIterator[Factory]:
    """A factory whose rows are committed together when the block ends."""
    async with transaction(engine) as session:
        yield Factory(session, account_id)
        # Rows written straight into the tables bypass ingestion: measure them as ingestion
        # would (the 24-hour window, office hours and targets), then rebuild the aggregates.
        await session.flush()
        await measure_written(session, account_id, now())
        await rebuild_aggregates(session, account_id)
