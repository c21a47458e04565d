"""The entity types: agents, tags, contacts and conversations, all plain values: a page's
nested entities are read with it, one statement per kind (`conversations`)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry

from resolvers.entities import AgentRow, ButtonRow, ConversationRow, TagRow
from resolvers.loaders import Nested, Wanted
from schema.context import WareportsInfo
from schema.enums import ConversationSource, ConversationStatus, Direction
from schema.metrics import Selected
from schema.scalars import instant


@strawberry.type(description="An agent of the inbox.")
class Agent:
    id: strawberry.ID
    email: str = strawberry.field(description="Lower-cased e-mail, unique in the account.")
    name: str | None

    @classmethod
    def of(cls, row: AgentRow) -> "Agent":
        return cls(id=strawberry.ID(str(row.id)), email=row.email, name=row.name)


@strawberry.type(description="A tag on contacts or conversations.")
class Tag:
    id: strawberry.ID
    name: str

    @classmethod
    def of(cls, row: TagRow) -> "Tag":
        return cls(id=strawberry.ID(str(row.id)), name=row.name)


@strawberry.type(description="A website WhatsApp button (`wareports button create`).")
class Button:
    id: strawberry.ID
    name: str
    key: str = strawberry.field(description="The key of its click URL, `/w/<key>`.")

    @classmethod
    def of(cls, row: ButtonRow) -> "Button":
        return cls(id=strawberry.ID(str(row.id)), name=row.name, key=row.key)


@strawberry.type(description="A WhatsApp contact.")
class Contact:
    id: strawberry.ID
    phone: str = strawberry.field(description='E.164 number: "+33612345678".')
    name: str | None
    tags: list[Tag] = strawberry.field(description="The contact's tags, by name.")


@strawberry.type(description="One conversation with a contact and the figures reports use.")
class Conversation:
    """Plain values only, read with the page (`conversations`): graphql-core completes them
    without calling a resolver per field."""

    id: strawberry.ID
    started_at: datetime = strawberry.field(
        description="Instant of the first message (or of the explicit start)."
    )
    closed_at: datetime | None = strawberry.field(
        description="Instant it was closed; null while open."
    )
    contact: Contact
    agent: Agent | None = strawberry.field(
        description="The current assignee; null when unassigned."
    )
    status: ConversationStatus
    direction: Direction = strawberry.field(description="Who sent the first message.")
    source: ConversationSource = strawberry.field(description="Who started the conversation.")
    tags: list[Tag] = strawberry.field(description="The conversation's tags, by name.")
    message_count: int = strawberry.field(description="Messages in both directions.")
    duration_seconds: int | None = strawberry.field(
        description="closedAt - startedAt, in seconds; null while open."
    )
    first_response_seconds: int | None = strawberry.field(
        description="From the first inbound message to the first human agent reply after it; "
        "null when unanswered or when the contact never wrote."
    )
    rating: int | None = strawberry.field(
        description="The latest rating, 1 to 5; null when not rated."
    )
    first_response_business_seconds: int | None = strawberry.field(
        description="firstResponseSeconds counting only the account's office hours (equal to "
        "it when the account has none)."
    )
    duration_business_seconds: int | None = strawberry.field(
        description="durationSeconds counting only the account's office hours."
    )
    first_response_due_at: datetime | None = strawberry.field(
        description="The first response's service-level deadline: the contact's first "
        "message + the account's target (in office hours or calendar time, as set); null "
        "without a target or a message from the contact."
    )
    edited_messages: int = strawberry.field(
        description="Of its messages, how many their sender edited (WhatsApp `edit`; counted "
        "once each in every figure, whatever the edits)."
    )
    deleted_messages: int = strawberry.field(
        description="Of its messages, how many their sender deleted for everyone (WhatsApp "
        "`revoke`; still counted once in every figure)."
    )
    window_missed: bool = strawberry.field(
        description="Whether a contact's message of it got no reply from the business within "
        "24 hours (windowMissedConversations)."
    )
    sla_breached: bool = strawberry.field(
        description="Whether the conversation breached a service-level target: first "
        "response or resolution after its deadline, or none yet and the deadline passed."
    )


# Never read: a nested entity the query did not select (its field is never completed).
UNSELECTED: Any = None


async def conversations(
    info: WareportsInfo, rows: Sequence[ConversationRow], node: Selected
) -> list[Conversation]:
    """The GraphQL conversations of `rows`, with the nested entities `node` selects read in one
    statement per kind for all of them."""
    contact = node["contact"]
    wanted = Wanted(
        contact="contact" in node,
        contact_tags="tags" in contact,
        agent="agent" in node,
        tags="tags" in node,
    )
    context = info.context
    nested = await Nested.load(context.session, context.account_id, rows, wanted)
    agents = {key: Agent.of(row) for key, row in nested.agents.items()}
    contacts = {
        key: Contact(
            id=strawberry.ID(str(row.id)),
            phone=row.phone,
            name=row.name,
            tags=[Tag.of(tag) for tag in nested.contact_tags.get(key, [])],
        )
        for key, row in nested.contacts.items()
    }
    return [
        Conversation(
            id=strawberry.ID(str(row.id)),
            started_at=instant(row.started_at),  # type: ignore[arg-type]
            closed_at=instant(row.closed_at),
            contact=contacts[row.contact_id] if wanted.contact else UNSELECTED,
            agent=None if row.assignee_id is None else agents.get(row.assignee_id),
            status=ConversationStatus(row.status),
            direction=Direction(row.direction),
            source=ConversationSource(row.source),
            tags=[Tag.of(tag) for tag in nested.tags.get(row.id, [])],
            message_count=row.message_count,
            duration_seconds=row.duration_seconds,
            first_response_seconds=row.first_response_seconds,
            rating=row.rating,
            first_response_business_seconds=row.first_response_business_seconds,
            duration_business_seconds=row.duration_business_seconds,
            first_response_due_at=instant(row.first_response_due_at),
            sla_breached=row.sla_breached,
            edited_messages=row.edited_messages,
            deleted_messages=row.deleted_messages,
            window_missed=bool(row.window_missed),
        )
        for row in rows
    ]
