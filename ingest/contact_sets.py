"""The contacts of each aggregate cell: exact distinct contacts from the aggregates.

Every table of conversation cells (`models.cells.CONVERSATION_CELLS`) has a `contacts` column:
the set of the contacts that have at least one conversation counted in the cell (started in
its day or hour, with its source, assignee and tags), as a serialized Roaring bitmap of contact
ids (`pyroaring.BitMap64`: any BIGINT id). A report's distinct contacts for a bucket or a range
is the cardinality of the union of its cells' sets (`resolvers.aggregates.contact_counts`):
exact, since a contact is in the union exactly when one of its conversations is in one of
those cells.

The sets are kept with the figures, from the aggregates' record of each conversation
(`aggregated_conversation`, `aggregated_conversation_tag`): `move` compares the record of the
conversations a sync brought up to date before and after it. A conversation entering a cell
adds its contact; one leaving a cell removes its contact unless another of the contact's
conversations is still counted there (all the records of the contacts concerned are read then).
The cells concerned were written by the figures' delta in the same transaction (a conversation
entering or leaving a cell moves its `conversations` count), so they exist and, on PostgreSQL,
are already locked by this transaction. `fill` derives every set of an account from the record
(a rebuild of the aggregates, a migration).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pyroaring import BitMap64
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    LargeBinary,
    Select,
    Table,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.sql.dml import Update
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation, ConversationTag
from models.calendar import DAY_SECONDS, HOUR_SECONDS, Periods, offset_at
from models.cells import CONVERSATION_CELLS, Cells
from models.sql import keyed_in_account, one_of, values_of
from models.tables import AggregatedConversation, AggregatedConversationTag

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
CONVERSATION_TAG: Table = ConversationTag.__table__  # type: ignore[attr-defined]
LEDGER: Table = AggregatedConversation.__table__  # type: ignore[attr-defined]
LEDGER_TAG: Table = AggregatedConversationTag.__table__  # type: ignore[attr-defined]
IDS = values_of("ids", BigInteger())
CONTACTS = values_of("contacts", BigInteger())
FILL_PAGE = 50_000  # records per page when filling


@dataclass(frozen=True)
class Counted:
    """Where the aggregates count one conversation, from their record."""

    contact_id: int
    day: int
    hour: int
    source: str
    assignee_id: int
    tags: frozenset[int]


Key = tuple[object, ...]


def cells_of(cells: Cells, counted: Counted) -> Iterator[Key]:
    """The keys of a table's cells the conversation counts in (`models.cells` key order)."""
    positions = _positions(cells.keys)
    base: tuple[object, ...] = (counted.day, counted.hour, counted.source, counted.assignee_id)
    row: tuple[object, ...]
    if "with_tag_id" in cells.keys:
        for with_tag in counted.tags:
            for tag in counted.tags:
                row = (*base, with_tag, tag)
                yield tuple(row[p] for p in positions)
    elif cells.tagged:
        for tag in counted.tags:
            row = (*base, None, tag)
            yield tuple(row[p] for p in positions)
    else:
        yield tuple(base[p] for p in positions)


# A cell key's values, in the order `cells_of` lays them out before picking a table's keys.
_FIELDS = ("day", "hour", "source", "assignee_id", "with_tag_id", "tag_id")


@cache
def _positions(keys: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(_FIELDS.index(key) for key in keys)


def _same_conversation(record: Table) -> ColumnElement[bool]:
    c = CONVERSATION
    return and_(c.c.account_id == record.c.account_id, c.c.id == record.c.conversation_id)


def _record(chosen: ColumnElement[bool]) -> Select[Any]:
    ledger, c = LEDGER, CONVERSATION
    return (
        select(
            ledger.c.conversation_id,
            c.c.contact_id,
            ledger.c.day,
            ledger.c.hour,
            ledger.c.source,
            ledger.c.assignee_id,
        )
        .select_from(ledger.join(c, _same_conversation(ledger)))
        .where(ledger.c.account_id == bindparam("account_id"), chosen)
    )


RECORD_OF_CONVERSATIONS = _record(one_of(LEDGER.c.conversation_id, IDS))
RECORD_OF_CONTACTS = _record(one_of(CONVERSATION.c.contact_id, CONTACTS))
RECORD_PAGE = (
    _record(LEDGER.c.conversation_id > bindparam("after"))
    .order_by(LEDGER.c.conversation_id)
    .limit(FILL_PAGE)
)
RECORDED_TAGS = select(LEDGER_TAG.c.conversation_id, LEDGER_TAG.c.tag_id).where(
    LEDGER_TAG.c.account_id == bindparam("account_id"), one_of(LEDGER_TAG.c.conversation_id, IDS)
)


async def recorded(
    session: AsyncSession,
    account_id: int,
    *,
    ids: Iterable[int] = (),
    contacts: Iterable[int] = (),
    tagged: bool = True,
) -> dict[int, Counted]:
    """The record of these conversations (or of every conversation of these contacts);
    `tagged=False`: the caller knows none of them has a recorded tag (none is read)."""
    if contacts:
        bound: dict[str, Any] = {"account_id": account_id, "contacts": list(contacts)}
        rows = (await session.execute(RECORD_OF_CONTACTS, bound)).all()
    else:
        bound = {"account_id": account_id, "ids": list(ids)}
        rows = (await session.execute(RECORD_OF_CONVERSATIONS, bound)).all()
    tags: dict[int, set[int]] = {}
    if rows and tagged:
        bound = {"account_id": account_id, "ids": [row[0] for row in rows]}
        for conversation_id, tag_id in (await session.execute(RECORDED_TAGS, bound)).all():
            tags.setdefault(conversation_id, set()).add(tag_id)
    return {
        row[0]: Counted(row[1], row[2], row[3], row[4], row[5], frozenset(tags.get(row[0], ())))
        for row in rows
    }


CURRENT = select(
    CONVERSATION.c.id,
    CONVERSATION.c.contact_id,
    CONVERSATION.c.started_at,
    CONVERSATION.c.source,
    CONVERSATION.c.assignee_id,
).where(
    keyed_in_account(CONVERSATION.c.account_id, bindparam("account_id")),
    one_of(CONVERSATION.c.id, IDS),
)
CURRENT_TAGS = select(CONVERSATION_TAG.c.conversation_id, CONVERSATION_TAG.c.tag_id).where(
    CONVERSATION_TAG.c.account_id == bindparam("account_id"),
    one_of(CONVERSATION_TAG.c.conversation_id, IDS),
)


async def current(
    session: AsyncSession,
    account_id: int,
    periods: Periods,
    *,
    ids: list[int],
    tagged: bool = True,
) -> dict[int, Counted]:
    """Where the aggregates count these conversations once brought up to date: what
    `ingest.aggregates.record` records for them from their current rows (the local day and
    hour of their start by the aggregates' zone `periods`, which cover their starts), read
    before it does. `tagged=False`: the caller knows none of them has a tag."""
    bound: dict[str, Any] = {"account_id": account_id, "ids": ids}
    rows = (await session.execute(CURRENT, bound)).all()
    tags: dict[int, set[int]] = {}
    if rows and tagged:
        for conversation_id, tag_id in (await session.execute(CURRENT_TAGS, bound)).all():
            tags.setdefault(conversation_id, set()).add(tag_id)
    counted = {}
    for key, contact_id, started_at, source, assignee_id in rows:
        local = started_at + offset_at(started_at, periods)
        counted[key] = Counted(
            contact_id,
            local // DAY_SECONDS,
            local // HOUR_SECONDS,
            source,
            assignee_id or 0,
            frozenset(tags.get(key, ())),
        )
    return counted


def moved(before: dict[int, Counted], after: dict[int, Counted]) -> list[int]:
    """The recorded conversations whose cells change (in id order): the aggregates take all
    their counted messages out of the recorded cells (the others only gain their new ones)."""
    return sorted(key for key, counted in before.items() if after.get(key) != counted)


Changes = dict[Cells, dict[Key, set[int]]]


async def move(
    session: AsyncSession, account_id: int, before: dict[int, Counted], after: dict[int, Counted]
) -> None:
    """Move the contacts of the conversations whose record changed from `before` to `after`."""
    added: Changes = {}
    removed: Changes = {}
    for conversation_id in before.keys() | after.keys():
        old, new = before.get(conversation_id), after.get(conversation_id)
        if old == new:
            continue
        for cells in CONVERSATION_CELLS:
            was = set(cells_of(cells, old)) if old else set()
            now = set(cells_of(cells, new)) if new else set()
            for key in now - was:
                assert new is not None
                added.setdefault(cells, {}).setdefault(key, set()).add(new.contact_id)
            for key in was - now:
                assert old is not None
                removed.setdefault(cells, {}).setdefault(key, set()).add(old.contact_id)
    if not added and not removed:
        return
    if removed:
        await _keep_the_held(session, account_id, removed)
    if session.get_bind().dialect.name == "sqlite":
        for cells in CONVERSATION_CELLS:
            plus, minus = added.get(cells, {}), removed.get(cells, {})
            if plus or minus:
                await _move_in_sql(session, account_id, cells, plus, minus)
        return
    await _read_and_write(session, account_id, added, removed)


async def _keep_the_held(session: AsyncSession, account_id: int, removed: Changes) -> None:
    """Drop from `removed` the contacts another conversation still holds in the cell."""
    contacts = {c for keys in removed.values() for held in keys.values() for c in held}
    holding: dict[int, dict[Cells, set[Key]]] = {}
    for counted in (await recorded(session, account_id, contacts=contacts)).values():
        mine = holding.setdefault(counted.contact_id, {})
        for cells in removed:
            mine.setdefault(cells, set()).update(cells_of(cells, counted))
    for cells, keys in removed.items():
        for key, gone in keys.items():
            gone -= {c for c in gone if key in holding.get(c, {}).get(cells, set())}


def _bound_keys(cells: Cells, account_id: int, key: Key) -> dict[str, object]:
    named = {f"key_{name}": value for name, value in zip(cells.keys, key, strict=True)}
    return {"account": account_id, **named}


async def _move_in_sql(
    session: AsyncSession,
    account_id: int,
    cells: Cells,
    plus: dict[Key, set[int]],
    minus: dict[Key, set[int]],
) -> None:
    """SQLite (one writer: no lock, no read first): each cell's set moved inside one UPDATE."""
    keys = sorted(plus.keys() | minus.keys())
    moved = await session.execute(
        _moved(cells),
        [
            {
                **_bound_keys(cells, account_id, key),
                "plus": _serialized(plus.get(key)),
                "minus": _serialized(minus.get(key)),
            }
            for key in keys
        ],
    )
    updated = moved.rowcount  # type: ignore[attr-defined]
    if updated != len(keys):
        raise RuntimeError(
            f"{cells.table.name}: {len(keys) - updated} cells missing their contacts"
        )


async def _read_and_write(
    session: AsyncSession, account_id: int, added: Changes, removed: Changes
) -> None:
    """PostgreSQL: the sets of every changed cell of every table read (locked) in one
    statement, moved here, and written back in one statement: two round trips, whatever the
    number of tables and cells. Each table's keys are bound as arrays, one per key column
    (`_LOCKED`, `_WRITTEN`: one SQL text each, prepared once per connection)."""
    keys = {
        cells: sorted(added.get(cells, {}).keys() | removed.get(cells, {}).keys())
        for cells in CONVERSATION_CELLS
    }
    bound: dict[str, Any] = {"account": account_id}
    for n, cells in enumerate(CONVERSATION_CELLS):
        for position, name in enumerate(cells.keys):
            bound[f"t{n}_{name}"] = [key[position] for key in keys[cells]]
    found: dict[tuple[int, Key], bytes | None] = {}
    for row in (await session.execute(_LOCKED, bound)).all():
        n, cells = row[0], CONVERSATION_CELLS[row[0]]
        found[n, tuple(row[1 + KEY_NAMES.index(name)] for name in cells.keys)] = row[-1]
    written: dict[str, Any] = {"account": account_id}
    for n, cells in enumerate(CONVERSATION_CELLS):
        plus, minus = added.get(cells, {}), removed.get(cells, {})
        sets = []
        for key in keys[cells]:
            if (n, key) not in found:
                raise RuntimeError(f"{cells.table.name}: no cell {key} for its contacts")
            stored = found[n, key]
            contacts = BitMap64.deserialize(stored) if stored else BitMap64()
            contacts |= BitMap64(plus.get(key, ()))
            contacts -= BitMap64(minus.get(key, ()))
            sets.append(contacts.serialize() if contacts else None)
        for name in cells.keys:
            written[f"t{n}_{name}"] = bound[f"t{n}_{name}"]
        written[f"t{n}_contacts"] = sets
    counts = (await session.execute(_WRITTEN, written)).one()
    for cells, count in zip(CONVERSATION_CELLS, counts, strict=True):
        if count != len(keys[cells]):
            raise RuntimeError(f"{cells.table.name}: {count} of {len(keys[cells])} sets written")


# Every key column of the tables of conversation cells, in the order `_LOCKED` returns them.
KEY_NAMES = ("day", "hour", "source", "assignee_id", "tag_id", "with_tag_id")
COLUMN_TYPES = {
    name: next(cells.table.c[name].type for cells in CONVERSATION_CELLS if name in cells.keys)
    for name in KEY_NAMES
}


def _keys_of(cells: Cells, n: int, *extra: tuple[str, Any]) -> Any:
    """Table `n`'s keys bound as arrays, one per key column (and `extra` columns), as rows."""
    table = cells.table
    arrays = [bindparam(f"t{n}_{name}", type_=ARRAY(table.c[name].type)) for name in cells.keys] + [
        bindparam(f"t{n}_{name}", type_=ARRAY(type_)) for name, type_ in extra
    ]
    names = [*cells.keys, *(name for name, _ in extra)]
    return func.unnest(*arrays).table_valued(*names).render_derived(name=f"keys_{n}")


def _matching(cells: Cells, keys: Any) -> ColumnElement[bool]:
    table = cells.table
    return and_(
        table.c.account_id == bindparam("account"),
        *(table.c[name] == keys.c[name] for name in cells.keys),
    )


def _locked_cells() -> Select[Any]:
    parts = []
    for n, cells in enumerate(CONVERSATION_CELLS):
        table, keys = cells.table, _keys_of(cells, n)
        columns = [
            table.c[name] if name in cells.keys else cast(null(), COLUMN_TYPES[name]).label(name)
            for name in KEY_NAMES
        ]
        part = (
            select(literal_column(str(n)).label("cells"), *columns, table.c.contacts)
            .select_from(table.join(keys, _matching(cells, keys)))
            .with_for_update(of=table)
            .cte(f"locked_{n}")
        )
        parts.append(select(part))
    return union_all(*parts)  # type: ignore[return-value]


def _written_cells() -> Select[Any]:
    counts = []
    for n, cells in enumerate(CONVERSATION_CELLS):
        table = cells.table
        keys = _keys_of(cells, n, ("contacts", LargeBinary()))
        step = (
            update(table)
            .where(_matching(cells, keys))
            .values(contacts=keys.c.contacts)
            .returning(literal_column("1"))
            .cte(f"written_{n}")
        )
        counts.append(select(func.count()).select_from(step).scalar_subquery())
    return select(*counts)


_LOCKED = _locked_cells()
_WRITTEN = _written_cells()


def _serialized(contacts: set[int] | None) -> bytes | None:
    return BitMap64(contacts).serialize() if contacts else None


@cache
def _moved(cells: Cells) -> Update:
    """SQLite: a cell's set with `:plus` added and `:minus` removed, in the UPDATE itself
    (`models.db.moved_contacts`)."""
    table = cells.table
    moved = func.wareports_moved_contacts(
        table.c.contacts,
        bindparam("plus", type_=LargeBinary()),
        bindparam("minus", type_=LargeBinary()),
        type_=LargeBinary(),
    )
    return (
        update(table)
        .where(
            table.c.account_id == bindparam("account"),
            *(table.c[name] == bindparam(f"key_{name}") for name in cells.keys),
        )
        .values(contacts=moved)
    )


@cache
def _update(cells: Cells) -> Update:
    table = cells.table
    return (
        update(table)
        .where(
            table.c.account_id == bindparam("account"),
            *(table.c[name] == bindparam(f"key_{name}") for name in cells.keys),
        )
        .values(contacts=bindparam("set"))
    )


async def fill(session: AsyncSession, account_id: int) -> None:
    """Every contact set of the account, from the record (the cells exist: a rebuild just
    filled them; sets of cells no conversation started in stay empty)."""
    sets: dict[Cells, dict[Key, BitMap64]] = {cells: {} for cells in CONVERSATION_CELLS}
    tags: dict[int, set[int]] = {}
    for conversation_id, tag_id in (
        await session.execute(
            select(LEDGER_TAG.c.conversation_id, LEDGER_TAG.c.tag_id).where(
                LEDGER_TAG.c.account_id == account_id
            )
        )
    ).all():
        tags.setdefault(conversation_id, set()).add(tag_id)
    after = -1
    while True:  # the record in pages, by conversation id
        bound = {"account_id": account_id, "after": after}
        page = (await session.execute(RECORD_PAGE, bound)).all()
        if not page:
            break
        after = page[-1][0]
        for row in page:
            counted = Counted(
                row[1], row[2], row[3], row[4], row[5], frozenset(tags.get(row[0], ()))
            )
            for cells, found in sets.items():
                for key in cells_of(cells, counted):
                    found.setdefault(key, BitMap64()).add(counted.contact_id)
    for cells, found in sets.items():
        updates = [
            {**_bound_keys(cells, account_id, key), "set": contacts.serialize()}
            for key, contacts in found.items()
        ]
        for start in range(0, len(updates), 5_000):
            await session.execute(_update(cells), updates[start : start + 5_000])
