"""Per-request DataLoaders for nested fields: one SQL statement per field per batch.

`resolvers` must not import Strawberry, so the loaders here are plain batch functions bound to a
session and account; `schema.context` wraps each in a `strawberry.dataloader.DataLoader`.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from models import ContactTag, ConversationTag
from resolvers import entities
from resolvers.entities import AgentRow, ContactRow, TagRow

BatchLoad = Callable[[Sequence[int]], Awaitable[Sequence[object]]]


@dataclass(frozen=True)
class Batches:
    """The batch functions of one request, all scoped to the caller's account."""

    session: AsyncSession
    account_id: int

    async def contacts(self, ids: Sequence[int]) -> list[ContactRow | None]:
        found = await entities.contacts_by_id(self.session, self.account_id, ids)
        return [found.get(key) for key in ids]

    async def agents(self, ids: Sequence[int]) -> list[AgentRow | None]:
        found = await entities.agents_by_id(self.session, self.account_id, ids)
        return [found.get(key) for key in ids]

    async def contact_tags(self, ids: Sequence[int]) -> list[list[TagRow]]:
        found = await entities.tags_by_owner(
            self.session, self.account_id, ContactTag, "contact_id", ids
        )
        return [found.get(key, []) for key in ids]

    async def conversation_tags(self, ids: Sequence[int]) -> list[list[TagRow]]:
        found = await entities.tags_by_owner(
            self.session, self.account_id, ConversationTag, "conversation_id", ids
        )
        return [found.get(key, []) for key in ids]
