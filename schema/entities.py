"""Root fields for the account's entities: agents, tags and one conversation."""

import strawberry

from models.ids import parse_id
from resolvers import entities
from schema.context import CanReadReports, WareportsInfo
from schema.metrics import selected
from schema.types import Agent, Button, Conversation, Tag, conversations


@strawberry.type
class EntityQuery:
    @strawberry.field(
        description="The account's agents, by e-mail.", permission_classes=[CanReadReports]
    )
    async def agents(self, info: WareportsInfo) -> list[Agent]:
        context = info.context
        return [
            Agent.of(row) for row in await entities.list_agents(context.session, context.account_id)
        ]

    @strawberry.field(
        description="The account's conversation tags, by name.", permission_classes=[CanReadReports]
    )
    async def tags(self, info: WareportsInfo) -> list[Tag]:
        context = info.context
        rows = await entities.list_tags(context.session, context.account_id, kind="conversation")
        return [Tag.of(row) for row in rows]

    @strawberry.field(
        description="The account's WhatsApp buttons, by name (their ids for filter.buttons).",
        permission_classes=[CanReadReports],
    )
    async def buttons(self, info: WareportsInfo) -> list[Button]:
        context = info.context
        rows = await entities.list_buttons(context.session, context.account_id)
        return [Button.of(row) for row in rows]

    @strawberry.field(
        description="One conversation of the account; null when no such id in this account.",
        permission_classes=[CanReadReports],
    )
    async def conversation(self, info: WareportsInfo, id: strawberry.ID) -> Conversation | None:
        key = parse_id(id)
        if key is None:
            return None
        row = await entities.get_conversation(info.context.session, info.context.account_id, key)
        if row is None:
            return None
        (found,) = await conversations(info, [row], selected(info))
        return found
