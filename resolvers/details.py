"""Conversation details: the conversations in range, newest first, by keyset pages."""

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation
from models.errors import BadInput
from models.ids import MAX_ID
from models.timing import report_part
from resolvers import aggregates
from resolvers.entities import ConversationRow, conversation_row, conversation_select
from resolvers.filters import Filter, conversation_conditions, started_in_range

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
CURSOR_VERSION = "v1"
_MAX_INTEGER = 2**62  # well inside BIGINT: a cursor can never overflow a bound parameter


@dataclass(frozen=True)
class Position:
    """A place in the details order (started_at desc, id desc): the last row of a page."""

    started_at: int
    id: int


@dataclass(frozen=True)
class Page:
    first: int = DEFAULT_PAGE_SIZE
    after: Position | None = None


@dataclass(frozen=True)
class ConversationEdge:
    cursor: str
    node: ConversationRow


@dataclass(frozen=True)
class ConversationPage:
    edges: tuple[ConversationEdge, ...]
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(position: Position) -> str:
    """An opaque cursor: URL-safe base64 of a versioned text, padding stripped."""
    text = f"{CURSOR_VERSION}:{position.started_at}:{position.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; raises `BadInput("after", ...)` for anything malformed."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, started_at, row_id = text.split(":")
        position = Position(int(started_at), int(row_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput("after", "malformed cursor; pass an endCursor or cursor as given") from None
    if (
        version != CURSOR_VERSION
        or not -_MAX_INTEGER < position.started_at < _MAX_INTEGER
        or not 0 < position.id <= MAX_ID
        or encode_cursor(position) != cursor
    ):
        raise BadInput("after", "malformed cursor; pass an endCursor or cursor as given")
    return position


def parse_page(first: int | None, after: str | None) -> Page:
    """Validate `first` (1..500; null = 50) and `after` (a cursor of this report or null)."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadInput("first", f"must be between 1 and {MAX_PAGE_SIZE}, got {size}")
    return Page(size, None if after is None else decode_cursor(after))


@report_part("details")
async def conversation_details(
    session: AsyncSession, account_id: int, flt: Filter, page: Page = Page()
) -> ConversationPage:
    """One page of the conversations that started in range and match the filter, ordered by
    started_at descending then id descending, after `page.after`."""
    query = (
        conversation_select()
        .where(*conversation_conditions(account_id, flt), *started_in_range(flt))
        .order_by(col(Conversation.started_at).desc(), col(Conversation.id).desc())
        .limit(page.first + 1)  # one more row says whether a next page exists
    )
    if page.after is not None:
        query = query.where(_before(page.after))
    rows = [conversation_row(row) for row in (await session.execute(query)).all()]
    edges = tuple(
        ConversationEdge(encode_cursor(Position(row.started_at, row.id)), row)
        for row in rows[: page.first]
    )
    return ConversationPage(
        edges=edges,
        has_next_page=len(rows) > page.first,
        end_cursor=edges[-1].cursor if edges else None,
    )


@report_part("details")
async def count_conversations(session: AsyncSession, account_id: int, flt: Filter) -> int:
    """How many conversations started in range and match the filter (all pages)."""
    kept = await aggregates.count_conversations(session, account_id, flt)
    if kept is not None:
        return kept
    query = (
        select(func.count())
        .select_from(Conversation)
        .where(*conversation_conditions(account_id, flt), *started_in_range(flt))
    )
    return int((await session.execute(query)).scalar_one())


def _before(position: Position) -> ColumnElement[bool]:
    """Rows strictly after `position` in the (started_at desc, id desc) order. The redundant
    upper bound lets the index scan start at the cursor instead of the end of the range."""
    return and_(
        col(Conversation.started_at) <= position.started_at,
        or_(
            col(Conversation.started_at) < position.started_at,
            and_(
                col(Conversation.started_at) == position.started_at,
                col(Conversation.id) < position.id,
            ),
        ),
    )
