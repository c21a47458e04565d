"""The DETAILS export: every conversation of the details report, streamed by keyset pages.

A year of a large account is a million rows, so this path is built for throughput in bounded
memory: one SQL statement per page returns each conversation with its contact, agent and the
ids of its contact and conversation tags (aggregated by correlated sub-queries on the link
tables' primary keys), and the tag names come from the account's tag list, read once and ranked
in SQL order. Which conversations and in which order is the details report's own definition
(`conversation_conditions`, `started_in_range`, started_at then id descending) and figures are
the entity rows' (`ConversationRow`), so a row carries exactly the values of `conversationDetails`.
"""

from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, String, and_, cast, func, or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Agent, Contact, ContactTag, Conversation, ConversationTag, Tag
from resolvers.details import Position
from resolvers.entities import (
    CONVERSATION_COLUMNS,
    breached,
    business_or_calendar,
    elapsed_seconds,
)
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
# The export's formula-injection guard (`resolvers.export.escape_cell`), passed in: that module
# imports this one.
Escape = Callable[[str], str]
HOUR = 3600
EPOCH = date(1970, 1, 1)
_CACHE_LIMIT = 100_000  # entries an InstantFormat or TagNames cache holds before it starts over


# "MM:SS" of every second of an hour, so that a formatted instant is three cached pieces.
MINUTES_SECONDS = tuple(f"{second // 60:02d}:{second % 60:02d}" for second in range(HOUR))


class InstantFormat:
    """`datetime.fromtimestamp(t, zone).isoformat()` for many instants, fast.

    The offset is looked up once per UTC hour (and only trusted when it is the same at both ends
    of the hour), the "date T hour:" text once per local hour; an hour holding an offset change
    takes the plain datetime path.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._hours: dict[int, tuple[int, str] | None] = {}
        self._prefixes: dict[int, str] = {}

    def __call__(self, instant: int) -> str:
        try:
            hour = self._hours[instant // HOUR]
        except KeyError:
            hour = self._hour(instant // HOUR)
        if hour is None:
            return datetime.fromtimestamp(instant, self.zone).isoformat()
        offset, suffix = hour
        local_hour, second = divmod(instant + offset, HOUR)
        prefix = self._prefixes.get(local_hour)
        if prefix is None:
            prefix = self._prefix(local_hour)
        return f"{prefix}{MINUTES_SECONDS[second]}{suffix}"

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

    def _prefix(self, local_hour: int) -> str:
        if len(self._prefixes) > _CACHE_LIMIT:
            self._prefixes.clear()
        day, hour = divmod(local_hour, 24)
        text = f"{(EPOCH + timedelta(days=day)).isoformat()}T{hour:02d}:"
        self._prefixes[local_hour] = text
        return text


class TagNames:
    """The account's tag names, ranked as SQL orders them (name_key, then id), so that a list of
    tag ids becomes the names in the order the GraphQL `tags` fields give. Only this account's
    tags are known: an id it does not know is left out and noted in `missing`."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._ranked = {str(tag_id): (rank, name) for rank, (tag_id, name) in enumerate(rows)}
        # A page repeats the same few lists of ids: each is joined once.
        self._joined: dict[str, str] = {}
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
        text = self._joined.get(ids)
        return self._join(ids) if text is None else text

    def _join(self, ids: str) -> str:
        known = [self._ranked[tag_id] for tag_id in ids.split(",") if tag_id in self._ranked]
        text = TAG_SEPARATOR.join(name for _, name in sorted(known))
        if len(known) != ids.count(",") + 1:
            self.missing = True  # not remembered: the names are read again
            return text
        if len(self._joined) > _CACHE_LIMIT:
            self._joined.clear()
        self._joined[ids] = text
        return text


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


def _difference(value: int | None, escape: Escape) -> str:
    """A difference of two instants, which a bad event could make negative: `-` would begin a
    formula, so a negative one goes through `escape`."""
    if value is None:
        return ""
    return str(value) if value >= 0 else escape(str(value))


def details_row(
    row: Sequence[Any], tags: TagNames, instant: InstantFormat, escape: Escape
) -> tuple[str, ...]:
    """The cells of one page row, in COLUMNS order, with the figures of `ConversationRow`; the
    cells that may begin with a formula character (free text, differences) through `escape`,
    the others (instants, enum names, counts) never do.

    The row is unpacked by position rather than made into a `ConversationRow`: building that
    frozen dataclass was the largest cost of a row. The derived figures use the same functions
    as its properties (`elapsed_seconds`, `business_or_calendar`, `breached`). A tuple of
    strings, which the garbage collector soon stops tracking (a list it would keep examining
    for as long as the page lives)."""
    (
        _id,
        started_at,
        closed_at,
        _contact_id,
        _assignee_id,
        status,
        direction,
        source,
        message_count,
        first_inbound_at,
        first_response_at,
        rating,
        stored_first_response_business_seconds,
        stored_duration_business_seconds,
        first_response_due_at,
        sla_first_response_met,
        sla_resolution_met,
        edited_messages,
        deleted_messages,
        window_missed,
        phone,
        name,
        agent_email,
        contact_tag_ids,
        conversation_tag_ids,
    ) = row
    duration = elapsed_seconds(started_at, closed_at)
    first_response = elapsed_seconds(first_inbound_at, first_response_at)
    return (
        instant(started_at),
        escape(phone),
        escape(name) if name else "",
        escape(tags.names(contact_tag_ids)) if contact_tag_ids else "",
        escape(tags.names(conversation_tag_ids)) if conversation_tag_ids else "",
        escape(agent_email) if agent_email else "",
        status,
        direction,
        source,
        str(message_count),
        _difference(duration, escape),
        _difference(first_response, escape),
        _int(rating),
        "" if closed_at is None else instant(closed_at),
        _difference(
            business_or_calendar(stored_first_response_business_seconds, first_response), escape
        ),
        _difference(business_or_calendar(stored_duration_business_seconds, duration), escape),
        "" if first_response_due_at is None else instant(first_response_due_at),
        "true" if breached(sla_first_response_met, sla_resolution_met) else "false",
        str(edited_messages),
        str(deleted_messages),
        "true" if window_missed else "false",
    )


async def details_pages(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    page_size: int = PAGE_SIZE,
    *,
    escape: Escape,
) -> AsyncGenerator[list[tuple[str, ...]], None]:
    """Every conversation of the details report in its order, `page_size` rows at a time, the
    cells that may begin with a formula character through `escape` (the export's guard); one
    statement per page (plus the tag list, read again when a page names a tag it lacks)."""
    tags = await TagNames.load(session, account_id)
    instant = InstantFormat(ZoneInfo(flt.timezone))
    after: Position | None = None
    while True:
        query = page_query(account_id, flt, after, page_size)
        page, last = await _page(session, query, tags, instant, escape)
        if tags.missing:  # a tag created since the list was read: read it and the page again
            tags = await TagNames.load(session, account_id)
            page, last = await _page(session, query, tags, instant, escape)
        if last is None:
            return
        yield page
        if len(page) < page_size:
            return
        after = Position(started_at=last.started_at, id=last.id)


async def _page(
    session: AsyncSession,
    query: Select[tuple[Any, ...]],
    tags: TagNames,
    instant: InstantFormat,
    escape: Escape,
) -> tuple[list[tuple[str, ...]], Any]:
    """The CSV rows of one page, and its last row (None when the page is empty).

    Core, not the ORM: plain column rows, without the ORM's per-row bookkeeping. The rows are
    formatted as the buffered result hands them out rather than all made first (`.all()`): a
    row object then lives a moment instead of the whole page, so the garbage collector finds
    few of them alive (a quarter as many collections over a 100,000-row export)."""
    connection = await session.connection()
    result = await connection.execute(query)
    page: list[tuple[str, ...]] = []
    last = None
    for last in result:
        page.append(details_row(last, tags, instant, escape))
    return page, last
