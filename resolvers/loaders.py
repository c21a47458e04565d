"""The entities nested under a page of conversations, read in one statement per kind.

A details page asks for each conversation's contact, the contact's tags, the agent and the
conversation's tags: each kind is one statement for the whole page (`Nested.load`), read
before GraphQL completes the page, so every field of it is a plain value (no per-row resolver
or DataLoader, whose awaitables cost graphql-core more than the SQL)."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from models import ContactTag, ConversationTag
from resolvers import entities
from resolvers.entities import AgentRow, ContactRow, ConversationRow, TagRow


@dataclass(frozen=True)
class Wanted:
    """Which nested entities the query selected."""

    contact: bool = False
    contact_tags: bool = False
    agent: bool = False
    tags: bool = False


@dataclass
class Nested:
    """A page's contacts, agents and tags by id (only the kinds wanted are read)."""

    contacts: dict[int, ContactRow] = field(default_factory=dict)
    contact_tags: dict[int, list[TagRow]] = field(default_factory=dict)
    agents: dict[int, AgentRow] = field(default_factory=dict)
    tags: dict[int, list[TagRow]] = field(default_factory=dict)

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        account_id: int,
        rows: Sequence[ConversationRow],
        wanted: Wanted,
    ) -> "Nested":
        nested = cls()
        if not rows:
            return nested
        contact_ids = sorted({row.contact_id for row in rows})
        if wanted.contact:
            nested.contacts = await entities.contacts_by_id(session, account_id, contact_ids)
        if wanted.contact and wanted.contact_tags:
            nested.contact_tags = await entities.tags_by_owner(
                session, account_id, ContactTag, "contact_id", contact_ids
            )
        agent_ids = sorted({row.assignee_id for row in rows if row.assignee_id is not None})
        if wanted.agent and agent_ids:
            nested.agents = await entities.agents_by_id(session, account_id, agent_ids)
        if wanted.tags:
            nested.tags = await entities.tags_by_owner(
                session, account_id, ConversationTag, "conversation_id", [row.id for row in rows]
            )
        return nested
