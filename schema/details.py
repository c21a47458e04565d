"""The `conversationDetails` root field: a keyset-paginated connection of conversations."""

from typing import Annotated

import strawberry
from strawberry import UNSET

from resolvers import details
from resolvers.filters import Filter
from schema.context import CanReadReports, WareportsInfo
from schema.metrics import RANGE_DESCRIPTION, DateRange, FilterArgument, report_filter, selected
from schema.types import Conversation, conversations


@strawberry.type(description="One conversation of the page and its cursor.")
class ConversationEdge:
    cursor: str = strawberry.field(
        description="Opaque position of this conversation; pass it as `after` to read on."
    )
    node: Conversation = strawberry.field(description="The conversation.")


@strawberry.type(description="Where the page stands.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when more conversations follow.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the page's last conversation; null when the page is empty."
    )


@strawberry.type(description="A page of the conversations that started in range.")
class ConversationConnection:
    edges: list[ConversationEdge] = strawberry.field(
        description="The page: startedAt descending, then id descending."
    )
    page_info: PageInfo = strawberry.field(description="Whether and where to read on.")
    flt: strawberry.Private[Filter]

    @strawberry.field(description=RANGE_DESCRIPTION)
    def range(self) -> DateRange:
        return DateRange.of(self.flt)

    @strawberry.field(
        description="How many conversations started in range and match the filter, all pages."
    )
    async def total_count(self, info: WareportsInfo) -> int:
        context = info.context
        return await details.count_conversations(context.session, context.account_id, self.flt)


@strawberry.type
class DetailsQuery:
    @strawberry.field(
        description="The conversations that started in range and match the filter, startedAt "
        "descending then id descending, by pages of `first` (1 to 500, default 50) after the "
        "opaque cursor `after`. Nested contact, tags and agent cost a constant number of "
        "statements per page.",
        permission_classes=[CanReadReports],
    )
    async def conversation_details(
        self,
        info: WareportsInfo,
        filter: FilterArgument,
        first: Annotated[
            int | None,
            strawberry.argument(description="Page size, 1 to 500; null means 50."),
        ] = details.DEFAULT_PAGE_SIZE,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Read after this cursor (an `endCursor` or edge `cursor` as given); "
                "absent or null: from the newest conversation."
            ),
        ] = UNSET,
    ) -> ConversationConnection:
        cursor = after if isinstance(after, str) else None  # UNSET (absent) or null
        flt, page = report_filter(filter, info), details.parse_page(first, cursor)
        asked, context = selected(info), info.context
        result = details.ConversationPage((), False, None)
        if "edges" in asked or "pageInfo" in asked:  # a bare totalCount needs no page
            result = await details.conversation_details(
                context.session, context.account_id, flt, page
            )
        rows = [edge.node for edge in result.edges]
        nodes = await conversations(info, rows, asked["edges"]["node"])
        return ConversationConnection(
            edges=[
                ConversationEdge(cursor=edge.cursor, node=node)
                for edge, node in zip(result.edges, nodes, strict=True)
            ],
            page_info=PageInfo(has_next_page=result.has_next_page, end_cursor=result.end_cursor),
            flt=flt,
        )
