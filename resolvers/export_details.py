"""The DETAILS export: every conversation of the details report, streamed by keyset pages.

A year of a large account is a million rows, so this path is built for throughput in bounded
memory: one SQL statement per page returns each conversation with its contact, agent and the
ids of its contact and conversation tags (aggregated by correlated sub-queries on the link
tables' primary keys), and the tag names come from the account's tag list, read once and ranked
in SQL order. Which conversations and in which order is the details report's own definition
(`conversation_conditions`, `started_in_range`, started_at then id descending) and figures are
the entity rows' (`ConversationRow`), so a row carries exactly the values of `conversationDetails`.
"""

from collections.abc import AsyncGenerator, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, String, and_, cast, func, or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Agent, Contact, ContactTag, Conversation, ConversationTag, Tag
from resolvers.details import Position
from resolvers.entities import CONVERSATION_COLUMNS, conversation_row
from resolvers.filters import Filter, conversation_conditions, started_in_range

PAGE_SIZE = 5000  # rows per statement: larger pages cost less per row, a page is ~1 MB of CSV
TAG_SEPARATOR = "; "
COLUMNS = (
    "started_at",
    "phone",
    "name",
    "contact_tags",
    "conversation_tags",
    "agent",
    "status",
    "direction",
    "source",
    "messages",
    "duration_seconds",
    "first_response_seconds",
    "rating",
    "closed_at",
    "first_response_business_seconds",
    "duration_business_seconds",
    "first_response_due_at",
    "sla_breached",
    "edited_messages",
    "deleted_messages",
    "window_missed",
)
# The cells that may begin with a formula character (free text, or a difference that a bad
# event could make negative); the others are instants, enum names and counts.
TEXT_COLUMNS = tuple(
    COLUMNS.index(name)
    for name in (
        "phone",
        "name",
        "contact_tags",
        "conversation_tags",
        "agent",
        "duration_seconds",
        "first_response_seconds",
        "first_response_business_seconds",
        "duration_business_seconds",
    )
)
HOUR = 3600
EPOCH = date(1970, 1, 1)
_CACHE_LIMIT = 100_000  # hours or days remembered by InstantFormat before it starts over


class InstantFormat:
    """`datetime.fromtimestamp(t, zone).isoformat()` for many instants, fast.

    The offset is looked up once per UTC hour (and only trusted when it is the same at both ends
    of the hour), the date text once per local day; an hour holding an offset change takes the
    plain datetime path.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._hours: dict[int, tuple[int, str] | None] = {}
        self._days: dict[int, str] = {}

    def __call__(self, instant: int) -> str:
        try:
            hour = self._hours[instant // HOUR]
        except KeyError:
            hour = self._hour(instant // HOUR)
        if hour is None:
            return datetime.fromtimestamp(instant, self.zone).isoformat()
        offset, suffix = hour
        day, second = divmod(instant + offset, 86_400)
        text = self._days.get(day)
        if text is None:
            text = self._day(day)
        hours, rest = divmod(second, HOUR)
        minutes, seconds = divmod(rest, 60)
        return f"{text}T{hours:02d}:{minutes:02d}:{seconds:02d}{suffix}"

    def _hour(self, number: int) -> tuple[int, str] | None:
        if len(self._hours) > _CACHE_LIMIT:
            self._hours.clear()
        first = datetime.fromtimestamp(number * HOUR, self.zone)
        last = datetime.fromtimestamp(number * HOUR + HOUR - 1, self.zone)
        offset = first.utcoffset()
        found = None
        if offset is not None and offset == last.utcoffset() and offset.microseconds == 0:
            found = (int(offset.total_seconds()), first.isoformat()[19:])
        self._hours[number] = found
        return found

    def _day(self, number: int) -> str:
        if len(self._days) > _CACHE_LIMIT:
            self._days.clear()
        text = (EPOCH + timedelta(days=number)).isoformat()
        self._days[number] = text
        return text


class TagNames:
    """The account's tag names, ranked as SQL orders them (name_key, then id), so that a list of
    tag ids becomes the names in the order the GraphQL `tags` fields give. Only this account's
    tags are known: an id it does not know is left out and noted in `missing`."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._ranked = {str(tag_id): (rank, name) for rank, (tag_id, name) in enumerate(rows)}
        self.missing = False

    @classmethod
    async def load(cls, session: AsyncSession, account_id: int) -> "TagNames":
        rows = await session.execute(
            select(Tag.id, Tag.name)
            .where(col(Tag.account_id) == account_id)
            .order_by(col(Tag.name_key), col(Tag.id))
        )
        return cls(rows.all())

    def names(self, ids: str | None) -> str:
        """`"12,7"` -> `"billing; Sales"`."""
        if not ids:
            return ""
        if "," not in ids:
            found = self._ranked.get(ids)
            if found is None:
                self.missing = True
                return ""
            return found[1]
        known = [self._ranked[tag_id] for tag_id in ids.split(",") if tag_id in self._ranked]
        self.missing = self.missing or len(known) != ids.count(",") + 1
        return TAG_SEPARATOR.join(name for _, name in sorted(known))


def _tag_ids(link: Any, owner: Any, outer: Any) -> Any:
    """Correlated sub-query: the comma-separated ids of the tags linked to one contact or
    conversation, in any order (TagNames orders them), found by the link table's key
    (account_id, owner, tag)."""
    return (
        select(func.aggregate_strings(cast(link.tag_id, String), ","))
        .where(link.account_id == col(Conversation.account_id), owner == outer)
        .scalar_subquery()
    )


def _after(position: Position) -> ColumnElement[bool]:
    """Rows strictly after `position` in the (started_at desc, id desc) order. The leading
    `started_at <=` repeats part of the OR so that both engines seek the index to the position
    instead of scanning every row before it (which made a long export quadratic)."""
    started_at, row_id = col(Conversation.started_at), col(Conversation.id)
    return and_(
        started_at <= position.started_at,
        or_(
            started_at < position.started_at,
            and_(started_at == position.started_at, row_id < position.id),
        ),
    )


def page_query(
    account_id: int, flt: Filter, after: Position | None, size: int
) -> Select[tuple[Any, ...]]:
    """One page of the details report with everything its CSV rows show."""
    query = (
        select(
            *CONVERSATION_COLUMNS,
            col(Contact.phone),
            col(Contact.name),
            col(Agent.email),
            _tag_ids(ContactTag, col(ContactTag.contact_id), col(Conversation.contact_id)),
            _tag_ids(ConversationTag, col(ConversationTag.conversation_id), col(Conversation.id)),
        )
        .join(
            Contact,
            and_(
                col(Contact.account_id) == col(Conversation.account_id),
                col(Contact.id) == col(Conversation.contact_id),
            ),
        )
        .outerjoin(
            Agent,
            and_(
                col(Agent.account_id) == col(Conversation.account_id),
                col(Agent.id) == col(Conversation.assignee_id),
            ),
        )
        .where(*conversation_conditions(account_id, flt), *started_in_range(flt))
        .order_by(col(Conversation.started_at).desc(), col(Conversation.id).desc())
        .limit(size)
    )
    return query if after is None else query.where(_after(after))


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def details_row(row: Sequence[Any], tags: TagNames, instant: InstantFormat) -> list[str]:
    """The cells of one page row, in COLUMNS order."""
    conversation = conversation_row(row[: len(CONVERSATION_COLUMNS)])
    phone, name, agent_email, contact_tag_ids, conversation_tag_ids = row[
        len(CONVERSATION_COLUMNS) :
    ]
    return [
        instant(conversation.started_at),
        phone,
        name or "",
        tags.names(contact_tag_ids),
        tags.names(conversation_tag_ids),
        agent_email or "",
        conversation.status,
        conversation.direction,
        conversation.source,
        str(conversation.message_count),
        _int(conversation.duration_seconds),
        _int(conversation.first_response_seconds),
        _int(conversation.rating),
        "" if conversation.closed_at is None else instant(conversation.closed_at),
        _int(conversation.first_response_business_seconds),
        _int(conversation.duration_business_seconds),
        ""
        if conversation.first_response_due_at is None
        else instant(conversation.first_response_due_at),
        "true" if conversation.sla_breached else "false",
        str(conversation.edited_messages),
        str(conversation.deleted_messages),
        "true" if conversation.window_missed else "false",
    ]


async def details_pages(
    session: AsyncSession, account_id: int, flt: Filter, page_size: int = PAGE_SIZE
) -> AsyncGenerator[list[list[str]], None]:
    """Every conversation of the details report in its order, `page_size` rows at a time; one
    statement per page (plus the tag list, read again when a page names a tag it lacks)."""
    tags = await TagNames.load(session, account_id)
    instant = InstantFormat(ZoneInfo(flt.timezone))
    after: Position | None = None
    while True:
        # Core, not the ORM: plain column rows, without the ORM's per-row bookkeeping.
        connection = await session.connection()
        rows = (await connection.execute(page_query(account_id, flt, after, page_size))).all()
        if not rows:
            return
        page = [details_row(row, tags, instant) for row in rows]
        if tags.missing:  # a tag created since the list was read: read it again
            tags = await TagNames.load(session, account_id)
            page = [details_row(row, tags, instant) for row in rows]
        yield page
        if len(rows) < page_size:
            return
        after = Position(started_at=rows[-1].started_at, id=rows[-1].id)
