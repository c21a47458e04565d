"""Agents, tags, contacts and conversations as the API shows them, read for one account."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, ScalarSelect
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from models import Agent, Contact, Conversation, Tag, WidgetButton
from models.office_hours import OfficeHours, parse_office_hours
from models.tables import OfficeHoursRow, ServiceLevel


@dataclass(frozen=True)
class AgentRow:
    id: int
    email: str
    name: str | None


@dataclass(frozen=True)
class TagRow:
    id: int
    name: str


@dataclass(frozen=True)
class ContactRow:
    id: int
    phone: str
    name: str | None


def elapsed_seconds(start: int | None, end: int | None) -> int | None:
    """Seconds from `start` to `end`; None while either is unknown. A conversation's duration
    (started to closed) and its first response time (first inbound to first response)."""
    return None if start is None or end is None else end - start


def business_or_calendar(stored: int | None, calendar: int | None) -> int | None:
    """A business time as shown: `ingest.service_levels` stores none when the account has no
    office hours, and then the business time is the calendar time."""
    return calendar if stored is None else stored


def breached(first_response_met: bool | None, resolution_met: bool | None) -> bool:
    """Whether a conversation missed either service-level target (None: no target, not
    breached)."""
    return first_response_met is False or resolution_met is False


@dataclass(frozen=True)
class ConversationRow:
    id: int
    started_at: int
    closed_at: int | None
    contact_id: int
    assignee_id: int | None
    status: str
    direction: str
    source: str
    message_count: int
    first_inbound_at: int | None
    first_response_at: int | None
    rating: int | None
    # `ingest.service_levels`: null business times are calendar times (no office hours).
    stored_first_response_business_seconds: int | None
    stored_duration_business_seconds: int | None
    first_response_due_at: int | None
    sla_first_response_met: bool | None
    sla_resolution_met: bool | None
    edited_messages: int
    deleted_messages: int
    window_missed: bool

    # The rules are plain functions so that the DETAILS export, which formats page rows
    # without building this class, applies the same ones.
    @property
    def duration_seconds(self) -> int | None:
        return elapsed_seconds(self.started_at, self.closed_at)

    @property
    def duration_business_seconds(self) -> int | None:
        return business_or_calendar(self.stored_duration_business_seconds, self.duration_seconds)

    @property
    def first_response_business_seconds(self) -> int | None:
        return business_or_calendar(
            self.stored_first_response_business_seconds, self.first_response_seconds
        )

    @property
    def sla_breached(self) -> bool:
        return breached(self.sla_first_response_met, self.sla_resolution_met)

    @property
    def first_response_seconds(self) -> int | None:
        return elapsed_seconds(self.first_inbound_at, self.first_response_at)


CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.started_at,
    Conversation.closed_at,
    Conversation.contact_id,
    Conversation.assignee_id,
    Conversation.status,
    Conversation.direction,
    Conversation.source,
    Conversation.message_count,
    Conversation.first_inbound_at,
    Conversation.first_response_at,
    Conversation.rating,
    Conversation.first_response_business_seconds,
    Conversation.duration_business_seconds,
    Conversation.first_response_due_at,
    Conversation.sla_first_response_met,
    Conversation.sla_resolution_met,
    Conversation.edited_messages,
    Conversation.deleted_messages,
    Conversation.window_missed,
)


def conversation_select() -> Select[tuple[object, ...]]:
    return select(*CONVERSATION_COLUMNS)  # type: ignore[call-overload,no-any-return]


def conversation_row(row: Sequence[object]) -> ConversationRow:
    return ConversationRow(*row)  # type: ignore[arg-type]


async def list_agents(session: AsyncSession, account_id: int) -> list[AgentRow]:
    rows = await session.execute(
        select(Agent.id, Agent.email, Agent.name)
        .where(Agent.account_id == account_id)
        .order_by(Agent.email)
    )
    return [AgentRow(*row) for row in rows]


@dataclass(frozen=True)
class ButtonRow:
    id: int
    name: str
    key: str


async def list_buttons(session: AsyncSession, account_id: int) -> list[ButtonRow]:
    rows = await session.execute(
        select(WidgetButton.id, WidgetButton.name, WidgetButton.key)
        .where(WidgetButton.account_id == account_id)
        .order_by(WidgetButton.name, col(WidgetButton.id))
    )
    return [ButtonRow(*row) for row in rows]


async def list_tags(
    session: AsyncSession, account_id: int, kind: str | None = None
) -> list[TagRow]:
    query = select(Tag.id, Tag.name).where(Tag.account_id == account_id)
    if kind is not None:
        query = query.where(Tag.kind == kind)
    rows = await session.execute(query.order_by(Tag.name_key, col(Tag.id)))
    return [TagRow(*row) for row in rows]


async def get_conversation(
    session: AsyncSession, account_id: int, conversation_id: int
) -> ConversationRow | None:
    row = (
        await session.execute(
            conversation_select().where(
                Conversation.account_id == account_id, Conversation.id == conversation_id
            )
        )
    ).first()
    return None if row is None else conversation_row(row)


async def contacts_by_id(
    session: AsyncSession, account_id: int, ids: Sequence[int]
) -> dict[int, ContactRow]:
    rows = await session.execute(
        select(Contact.id, Contact.phone, Contact.name).where(
            Contact.account_id == account_id,
            Contact.id.in_(ids),  # type: ignore[union-attr]
        )
    )
    return {row[0]: ContactRow(*row) for row in rows}


async def agents_by_id(
    session: AsyncSession, account_id: int, ids: Sequence[int]
) -> dict[int, AgentRow]:
    rows = await session.execute(
        select(Agent.id, Agent.email, Agent.name).where(
            Agent.account_id == account_id,
            Agent.id.in_(ids),  # type: ignore[union-attr]
        )
    )
    return {row[0]: AgentRow(*row) for row in rows}


async def tags_by_owner(
    session: AsyncSession, account_id: int, link: type, owner_column: str, ids: Sequence[int]
) -> dict[int, list[TagRow]]:
    """Tags of many contacts or conversations in one statement, each list ordered by name (the
    links found by their key, (account_id, owner, tag))."""
    owner, links = getattr(link, owner_column), link.__table__  # type: ignore[attr-defined]
    rows = await session.execute(
        select(owner, Tag.id, Tag.name)
        .join(Tag, (Tag.account_id == links.c.account_id) & (Tag.id == links.c.tag_id))
        .where(links.c.account_id == account_id, owner.in_(ids))
        .order_by(Tag.name_key, col(Tag.id))
    )
    found: dict[int, list[TagRow]] = {}
    for owner_id, tag_id, name in rows:
        found.setdefault(owner_id, []).append(TagRow(tag_id, name))
    return found


async def account_counts(session: AsyncSession, account_id: int) -> dict[str, int]:
    """How many agents, conversation tags and buttons the account holds: what the query cost
    estimate multiplies their lists by (`schema.limits`). One statement, counts by the
    account's indexes."""

    def counted(table: type, *where: ColumnElement[bool]) -> ScalarSelect[int]:
        return (
            select(func.count())
            .select_from(table)
            .where(col(table.account_id) == account_id, *where)  # type: ignore[attr-defined]
            .scalar_subquery()
        )

    agents, tags, buttons = (
        await session.execute(
            select(
                counted(Agent),
                counted(Tag, col(Tag.kind) == "conversation"),
                counted(WidgetButton),
            )
        )
    ).one()
    return {"agents": agents, "tags": tags, "buttons": buttons}


async def service_level(session: AsyncSession, account_id: int) -> ServiceLevel | None:
    """The account's service-level targets; None when it has none."""
    return await session.get(ServiceLevel, account_id)


async def office_hours(session: AsyncSession, account_id: int) -> OfficeHours | None:
    """The account's office hours; None when it has none (always open)."""
    row = await session.get(OfficeHoursRow, account_id)
    return None if row is None else parse_office_hours(row.schedule, row.closed_dates)
