"""The conversation rules of every ingestion path; every conversation change goes through here.

A contact's messages form one conversation while no gap between them exceeds the account's
auto-close delay D. A conversation therefore covers the instants [started_at - D, end], where
end is `closed_at` once closed (for an automatic close that is last_message_at + D) and
last_message_at + D while open. A message joins the conversation that covers its own instant,
whatever the order in which messages arrive and whether the auto-close job has run yet, so
arrival order and job timing do not change the rows. Gaps are not merged: a late message that
would bridge two conversations joins the earlier one.

Every change ends with `recompute_figures`, which derives the conversation's figures from its
message rows; it is the one hook where derived data (report aggregates) is to be maintained.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, case, delete, func, literal, or_, update
from sqlalchemy import select as select_columns
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import ScalarSelect
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ingest import aggregates, changes
from ingest.contacts import insert_ignoring_conflicts
from ingest.statuses import apply_pending_statuses, flush_statuses
from ingest.transactions import account_settings
from models import Conversation, ConversationTag, Message, WidgetClick
from models.db import now as current_instant
from models.enums import Direction, Source, Status
from models.errors import BadInput

DIRECTION_OF_SENDER = {
    "contact": Direction.INBOUND,
    "agent": Direction.OUTBOUND,
    "automation": Direction.OUTBOUND,
}
SOURCE_OF_SENDER = {"contact": Source.INBOUND, "agent": Source.INBOX, "automation": Source.FLOW}


@dataclass(frozen=True)
class Clock:
    """What every rule needs to know about the account and the moment of the transaction."""

    account_id: int
    delay: int  # the account's auto-close delay, seconds
    now: int
    default_channel_id: int | None  # the account's only channel, for conversations from events


@dataclass(frozen=True)
class NewMessage:
    contact_id: int
    channel_id: int | None
    wamid: str
    sender: str  # contact | agent | automation
    sent_at: int
    agent_id: int | None = None
    type: str = "text"
    body: str | None = None


async def clock_of(session: AsyncSession, account_id: int, now: int | None = None) -> Clock:
    """The account's clock (its settings are read once per transaction: a group transaction
    holds many units)."""
    found = await account_settings(session, account_id)
    return Clock(
        account_id=account_id,
        delay=found.auto_close_seconds,
        now=current_instant() if now is None else now,
        default_channel_id=found.first_channel_id if found.channels == 1 else None,
    )


# --- finding conversations (callers hold the contact's lock, see ingest.contacts.lock_contacts)


async def conversation_covering(
    session: AsyncSession, clock: Clock, contact_id: int, channel_id: int | None, at: int
) -> Conversation | None:
    """The contact's conversation whose time window holds `at` (see the module docstring), locked.

    With `channel_id`, conversations on that number or on none yet (started by an event) qualify.
    """
    open_until = col(Conversation.last_message_at) + clock.delay
    end = func.coalesce(col(Conversation.closed_at), open_until)
    query = (
        select(Conversation)
        .where(
            Conversation.account_id == clock.account_id,
            Conversation.contact_id == contact_id,
            col(Conversation.started_at) - clock.delay <= at,
            end >= at,
        )
        .order_by(col(Conversation.started_at), col(Conversation.id))
    )
    if channel_id is not None:
        query = query.where(
            or_(col(Conversation.channel_id) == channel_id, col(Conversation.channel_id).is_(None))
        )
    candidates = (await session.scalars(_locked(query))).all()
    started_before = [row for row in candidates if row.started_at <= at]
    if started_before:
        return started_before[-1]
    return candidates[0] if candidates else None


async def current_conversation(
    session: AsyncSession, clock: Clock, contact_id: int
) -> Conversation | None:
    """What a conversation event addresses: the contact's open conversation, else the latest."""
    query = (
        select(Conversation)
        .where(Conversation.account_id == clock.account_id, Conversation.contact_id == contact_id)
        .order_by(
            col(Conversation.closed_at).is_(None).desc(),
            col(Conversation.started_at).desc(),
            col(Conversation.id).desc(),
        )
        .limit(1)
    )
    return (await session.scalars(_locked(query))).first()


async def conversation_by_id(
    session: AsyncSession, clock: Clock, conversation_id: int
) -> Conversation | None:
    query = select(Conversation).where(
        Conversation.account_id == clock.account_id, Conversation.id == conversation_id
    )
    return (await session.scalars(_locked(query))).first()


def _locked(query: SelectOfScalar[Conversation]) -> SelectOfScalar[Conversation]:
    # Re-read the row under its lock: the identity map may hold a copy read before it.
    return query.with_for_update().execution_options(populate_existing=True)


# --- the mutations


async def record_message(
    session: AsyncSession, clock: Clock, message: NewMessage
) -> Conversation | None:
    """Store a message in the conversation covering its instant, starting one if none does.

    Returns the conversation, or None when a message with that wamid is already stored.
    """
    await flush_statuses(session)  # statuses that arrived before it may be about this message
    if await _message_exists(session, clock.account_id, message.wamid):
        return None
    conversation = await conversation_covering(
        session, clock, message.contact_id, message.channel_id, message.sent_at
    )
    if conversation is None:
        await close_overdue(
            session, clock, until=message.sent_at - 1, contact_id=message.contact_id
        )
        conversation = await _new_conversation(
            session,
            clock,
            contact_id=message.contact_id,
            channel_id=message.channel_id,
            source=SOURCE_OF_SENDER[message.sender],
            at=message.sent_at,
            assignee_id=message.agent_id,
        )
    elif message.sent_at < conversation.started_at and conversation.source_explicit:
        # An earlier message started this conversation before the explicit start was recorded.
        conversation.source_explicit = False
    if conversation.channel_id is None and message.channel_id is not None:
        conversation.channel_id = message.channel_id
    if conversation.assignee_id is None and message.agent_id is not None:
        # The first agent who writes in an unassigned conversation takes it, so an agent's
        # reply recorded before the message it answers leaves the same row as in order.
        conversation.assignee_id = message.agent_id
    assert conversation.id is not None
    row = Message(
        account_id=clock.account_id,
        conversation_id=conversation.id,
        wamid=message.wamid,
        direction=DIRECTION_OF_SENDER[message.sender],
        sender=message.sender,
        agent_id=message.agent_id,
        type=message.type,
        body=message.body,
        sent_at=message.sent_at,
    )
    session.add(row)
    await session.flush()
    # Statuses only ever describe messages the business sent.
    if row.direction == Direction.OUTBOUND:
        await apply_pending_statuses(session, row)
    await changes.apply_waiting(session, clock.account_id, {row.wamid})
    await recompute_figures(session, clock, conversation)
    return conversation


async def start_conversation(
    session: AsyncSession,
    clock: Clock,
    contact_id: int,
    source: str,
    at: int,
    agent_id: int | None,
) -> Conversation:
    """An explicit start (`conversation.started`): marks the conversation covering `at`, else
    starts one. A covering conversation that began earlier keeps the source it began with;
    an INBOX start assigns the agent who started it."""
    conversation = await conversation_covering(session, clock, contact_id, None, at)
    if conversation is None:
        await close_overdue(session, clock, until=at - 1, contact_id=contact_id)
        conversation = await _new_conversation(
            session,
            clock,
            contact_id=contact_id,
            channel_id=clock.default_channel_id,
            source=source,
            at=at,
            assignee_id=agent_id,
        )
        conversation.source_explicit = True
    elif at <= conversation.started_at:
        conversation.source = source
        conversation.source_explicit = True
        conversation.started_at = at
    if agent_id is not None:
        conversation.assignee_id = agent_id
    await recompute_figures(session, clock, conversation)
    return conversation


async def assign(
    session: AsyncSession, clock: Clock, conversation: Conversation, agent_id: int | None
) -> None:
    conversation.assignee_id = agent_id
    await recompute_figures(session, clock, conversation)


async def rate(
    session: AsyncSession, clock: Clock, conversation: Conversation, rating: int, at: int
) -> None:
    """The latest rating wins, by its own instant, whatever the arrival order."""
    if conversation.rated_at is None or at >= conversation.rated_at:
        conversation.rating = rating
        conversation.rated_at = at
        await recompute_figures(session, clock, conversation)


async def close(
    session: AsyncSession,
    clock: Clock,
    conversation: Conversation,
    at: int,
    agent_id: int | None,
) -> None:
    """Close at `at` (by `agent_id`, or an automation when None). The earliest close wins, and
    a conversation already overdue at `at` stays closed automatically at last message + delay,
    so the outcome does not depend on whether the auto-close job ran before the event."""
    if at < conversation.started_at:
        raise BadInput("at", "is before the conversation started")
    last = conversation.last_message_at or conversation.started_at
    if conversation.closed_at is not None and conversation.closed_at < at:
        return
    if at > last + clock.delay:
        conversation.closed_at = last + clock.delay
        conversation.auto_closed = True
        conversation.closed_by_id = None
    else:
        conversation.closed_at = at
        conversation.auto_closed = False
        conversation.closed_by_id = agent_id
    await recompute_figures(session, clock, conversation)


async def tag(session: AsyncSession, clock: Clock, conversation: Conversation, tag_id: int) -> None:
    await insert_ignoring_conflicts(
        session,
        ConversationTag,
        {"account_id": clock.account_id, "conversation_id": conversation.id, "tag_id": tag_id},
    )
    await recompute_figures(session, clock, conversation)


async def untag(
    session: AsyncSession, clock: Clock, conversation: Conversation, tag_id: int
) -> None:
    result = await session.execute(
        delete(ConversationTag).where(
            col(ConversationTag.account_id) == clock.account_id,
            col(ConversationTag.conversation_id) == conversation.id,
            col(ConversationTag.tag_id) == tag_id,
        )
    )
    if result.rowcount:  # type: ignore[attr-defined]
        await recompute_figures(session, clock, conversation)


async def attach_click(
    session: AsyncSession, clock: Clock, conversation: Conversation, click: WidgetClick
) -> None:
    """Attribute the conversation to a website button click (both rows point at each other)."""
    click.conversation_id = conversation.id
    conversation.widget_click_id = click.id
    session.add(click)
    await recompute_figures(session, clock, conversation)


async def keep_referral(
    session: AsyncSession, clock: Clock, conversation: Conversation, referral: dict[str, str | None]
) -> None:
    """Keep the click-to-WhatsApp ad that brought the conversation (the first one seen)."""
    if conversation.referral_source_url or conversation.referral_source_id:
        return
    conversation.referral_source_url = referral.get("source_url")
    conversation.referral_source_id = referral.get("source_id")
    conversation.referral_source_type = referral.get("source_type")
    conversation.referral_headline = referral.get("headline")
    await recompute_figures(session, clock, conversation)


async def close_overdue(
    session: AsyncSession,
    clock: Clock,
    *,
    until: int,
    contact_id: int | None = None,
    skip_locked: bool = False,
) -> list[int]:
    """Close automatically, at last message + delay, the open conversations whose last message
    + delay is at or before `until` (of one contact, or of the whole account); returns their ids.

    One UPDATE whose WHERE re-checks `closed_at IS NULL`, so a conversation is closed once even
    by concurrent jobs; `skip_locked` (the periodic job) leaves rows that an ingesting
    transaction holds to that transaction, which applies the same rule when it recomputes.
    """
    overdue = select(Conversation.id).where(
        Conversation.account_id == clock.account_id,
        col(Conversation.status).in_((Status.OPEN, Status.PENDING)),
        col(Conversation.closed_at).is_(None),
        col(Conversation.last_message_at) <= until - clock.delay,
    )
    if contact_id is not None:
        overdue = overdue.where(Conversation.contact_id == contact_id)
    overdue = overdue.with_for_update(skip_locked=skip_locked)
    statement = (
        update(Conversation)
        .where(col(Conversation.id).in_(overdue.scalar_subquery()))
        .where(col(Conversation.closed_at).is_(None))
        .values(
            closed_at=col(Conversation.last_message_at) + clock.delay,
            auto_closed=True,
            closed_by_id=None,
            status=Status.CLOSED,
        )
        .returning(col(Conversation.id))
        .execution_options(synchronize_session="fetch")
    )
    closed = [row for row in (await session.scalars(statement)).all() if row is not None]
    await aggregates.sync_conversations(session, clock.account_id, closed, clock.now)
    return closed


async def recompute_figures(
    session: AsyncSession, clock: Clock, conversation: Conversation
) -> None:
    """Derive the conversation's figures from its message rows (one aggregate statement), apply
    the auto-close rule, and write the row. Every mutation ends here."""
    assert conversation.id is not None
    bound = {"account_id": clock.account_id, "conversation_id": conversation.id}
    figures = (await session.execute(FIGURES, bound)).one()
    count, inbound, outbound, earliest, latest, first_inbound, first_response = figures[:7]
    first_sender, last_sender = figures[7:]
    conversation.message_count = count
    conversation.inbound_count = inbound
    conversation.outbound_count = outbound
    if earliest is not None and earliest < conversation.started_at:
        conversation.started_at = earliest
    conversation.last_message_at = latest if latest is not None else conversation.started_at
    conversation.first_inbound_at = first_inbound
    conversation.first_response_at = first_response
    conversation.direction = DIRECTION_OF_SENDER.get(first_sender, Direction.OUTBOUND)
    if not conversation.source_explicit and first_sender is not None:
        conversation.source = SOURCE_OF_SENDER[first_sender]
    _apply_auto_close(clock, conversation)
    if conversation.closed_at is not None:
        conversation.status = Status.CLOSED
    else:
        conversation.status = (
            Status.PENDING if last_sender in ("agent", "automation") else Status.OPEN
        )
    session.add(conversation)
    await session.flush()
    await aggregates.sync_conversations(session, clock.account_id, [conversation.id], clock.now)


def _apply_auto_close(clock: Clock, conversation: Conversation) -> None:
    """Closed automatically at last message + delay once that instant has passed; a late message
    that moved the last message reopens or re-closes it. A manual close is never touched."""
    if conversation.closed_at is not None and not conversation.auto_closed:
        return
    assert conversation.last_message_at is not None
    due = conversation.last_message_at + clock.delay
    if due <= clock.now:
        conversation.closed_at = due
        conversation.auto_closed = True
        conversation.closed_by_id = None
    else:
        conversation.closed_at = None
        conversation.auto_closed = False


ACCOUNT: BindParameter[int] = bindparam("account_id")
CONVERSATION_ID: BindParameter[int] = bindparam("conversation_id")


def _figures_statement() -> Select[Any]:  # type: ignore[type-arg]
    """The aggregates of one conversation's messages (`:conversation_id`), built once."""
    m = MESSAGE.alias("m")
    inbound = m.c.direction == Direction.INBOUND
    return select_columns(
        func.count(m.c.id),
        func.count(case((inbound, literal(1)))),
        func.count(case((~inbound, literal(1)))),
        func.min(m.c.sent_at),
        func.max(m.c.sent_at),
        func.min(case((inbound, m.c.sent_at))),
        _first_response(),
        _sender_at_end(latest=False),
        _sender_at_end(latest=True),
    ).where(m.c.account_id == ACCOUNT, m.c.conversation_id == CONVERSATION_ID)


def _first_response() -> ScalarSelect[Any]:
    """The first message of a human agent at or after the contact's first message."""
    reply, first = MESSAGE.alias("reply"), MESSAGE.alias("first")
    first_inbound = (
        select_columns(func.min(first.c.sent_at))
        .where(first.c.account_id == ACCOUNT, first.c.conversation_id == CONVERSATION_ID)
        .where(first.c.direction == Direction.INBOUND)
        .scalar_subquery()
    )
    return (
        select_columns(func.min(reply.c.sent_at))
        .where(reply.c.account_id == ACCOUNT, reply.c.conversation_id == CONVERSATION_ID)
        .where(reply.c.sender == "agent", reply.c.sent_at >= first_inbound)
        .scalar_subquery()
    )


def _sender_at_end(*, latest: bool) -> ScalarSelect[Any]:
    """The sender of the earliest (or latest) message. Messages are in one total order that does
    not depend on arrival: instant, then the contact's message before a reply of the same
    second, then wamid."""
    s = MESSAGE.alias("latest" if latest else "earliest")
    reply_last = case((s.c.direction == Direction.INBOUND, 0), else_=1)
    order = (s.c.sent_at, reply_last, s.c.wamid)
    return (
        select_columns(s.c.sender)
        .where(s.c.account_id == ACCOUNT, s.c.conversation_id == CONVERSATION_ID)
        .order_by(*(term.desc() for term in order) if latest else order)
        .limit(1)
        .scalar_subquery()
    )


MESSAGE = Message.__table__  # type: ignore[attr-defined]
FIGURES = _figures_statement()


async def _new_conversation(
    session: AsyncSession,
    clock: Clock,
    *,
    contact_id: int,
    channel_id: int | None,
    source: str,
    at: int,
    assignee_id: int | None,
) -> Conversation:
    conversation = Conversation(
        account_id=clock.account_id,
        contact_id=contact_id,
        channel_id=channel_id if channel_id is not None else clock.default_channel_id,
        assignee_id=assignee_id,
        source=source,
        direction=Direction.OUTBOUND,
        started_at=at,
        last_message_at=at,
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def _message_exists(session: AsyncSession, account_id: int, wamid: str) -> bool:
    found = await session.scalar(
        select(Message.id).where(Message.account_id == account_id, Message.wamid == wamid)
    )
    return found is not None
