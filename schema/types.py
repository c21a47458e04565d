"""The entity types: agents, tags, contacts and conversations; nested fields go through loaders."""

from datetime import datetime

import strawberry

from resolvers.entities import AgentRow, ButtonRow, ContactRow, ConversationRow, TagRow
from schema.context import WareportsInfo
from schema.enums import ConversationSource, ConversationStatus, Direction
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
    contact_id: strawberry.Private[int]

    @classmethod
    def of(cls, row: ContactRow) -> "Contact":
        return cls(id=strawberry.ID(str(row.id)), phone=row.phone, name=row.name, contact_id=row.id)

    @strawberry.field(description="The contact's tags, by name.")
    async def tags(self, info: WareportsInfo) -> list[Tag]:
        return [
            Tag.of(row) for row in await info.context.loaders.contact_tags.load(self.contact_id)
        ]


@strawberry.type(description="One conversation with a contact and the figures reports use.")
class Conversation:
    row: strawberry.Private[ConversationRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="Instant of the first message (or of the explicit start).")
    def started_at(self) -> datetime:
        return instant(self.row.started_at)  # type: ignore[return-value]

    @strawberry.field(description="Instant it was closed; null while open.")
    def closed_at(self) -> datetime | None:
        return instant(self.row.closed_at)

    @strawberry.field
    async def contact(self, info: WareportsInfo) -> Contact:
        row = await info.context.loaders.contact.load(self.row.contact_id)
        assert row is not None  # a conversation's contact is in the same account
        return Contact.of(row)

    @strawberry.field(description="The current assignee; null when unassigned.")
    async def agent(self, info: WareportsInfo) -> Agent | None:
        if self.row.assignee_id is None:
            return None
        row = await info.context.loaders.agent.load(self.row.assignee_id)
        return None if row is None else Agent.of(row)

    @strawberry.field
    def status(self) -> ConversationStatus:
        return ConversationStatus(self.row.status)

    @strawberry.field(description="Who sent the first message.")
    def direction(self) -> Direction:
        return Direction(self.row.direction)

    @strawberry.field(description="Who started the conversation.")
    def source(self) -> ConversationSource:
        return ConversationSource(self.row.source)

    @strawberry.field(description="The conversation's tags, by name.")
    async def tags(self, info: WareportsInfo) -> list[Tag]:
        rows = await info.context.loaders.conversation_tags.load(self.row.id)
        return [Tag.of(row) for row in rows]

    @strawberry.field(description="Messages in both directions.")
    def message_count(self) -> int:
        return self.row.message_count

    @strawberry.field(description="closedAt - startedAt, in seconds; null while open.")
    def duration_seconds(self) -> int | None:
        return self.row.duration_seconds

    @strawberry.field(
        description="From the first inbound message to the first human agent reply after it; "
        "null when unanswered or when the contact never wrote."
    )
    def first_response_seconds(self) -> int | None:
        return self.row.first_response_seconds

    @strawberry.field(description="The latest rating, 1 to 5; null when not rated.")
    def rating(self) -> int | None:
        return self.row.rating
