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
    BigInteger,
    ColumnElement,
    LargeBinary,
    Select,
    Table,
    and_,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.dml import Update
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation
from models.cells import CONVERSATION_CELLS, Cells
from models.sql import one_of, values_of
from models.tables import AggregatedConversation, AggregatedConversationTag

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
LEDGER: Table = AggregatedConversation.__table__  # type: ignore[attr-defined]
LEDGER_TAG: Table = AggregatedConversationTag.__table__  # type: ignore[attr-defined]
IDS = values_of("ids", BigInteger())
CONTACTS = values_of("contacts", BigInteger())
CHUNK = 500  # cells per look-up statement
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
    values: dict[str, object] = {
        "day": counted.day,
        "hour": counted.hour,
        "source": counted.source,
        "assignee_id": counted.assignee_id,
    }
    if "with_tag_id" in cells.keys:
        for with_tag in counted.tags:
            for tag in counted.tags:
                yield tuple(
                    {**values, "with_tag_id": with_tag, "tag_id": tag}[k] for k in cells.keys
                )
    elif cells.tagged:
        for tag in counted.tags:
            yield tuple({**values, "tag_id": tag}[k] for k in cells.keys)
    else:
        yield tuple(values[k] for k in cells.keys)


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
    for cells in CONVERSATION_CELLS:
        plus, minus = added.get(cells, {}), removed.get(cells, {})
        if plus or minus:
            await _apply(session, account_id, cells, plus, minus)


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


def _key_columns(cells: Cells) -> list[object]:
    return [cells.table.c[name] for name in cells.keys]


async def _apply(
    session: AsyncSession,
    account_id: int,
    cells: Cells,
    plus: dict[Key, set[int]],
    minus: dict[Key, set[int]],
) -> None:
    table = cells.table
    keys = sorted(plus.keys() | minus.keys())  # in key order, as the figures lock them
    if session.get_bind().dialect.name == "sqlite":  # one writer: no lock, no read first
        moved = await session.execute(
            _moved(cells),
            [
                {
                    "account": account_id,
                    **{f"key_{name}": value for name, value in zip(cells.keys, key, strict=True)},
                    "plus": _serialized(plus.get(key)),
                    "minus": _serialized(minus.get(key)),
                }
                for key in keys
            ],
        )
        updated = moved.rowcount  # type: ignore[attr-defined]
        if updated != len(keys):
            raise RuntimeError(f"{table.name}: {len(keys) - updated} cells missing their contacts")
        return
    found: dict[Key, bytes | None] = {}
    for start in range(0, len(keys), CHUNK):
        some = keys[start : start + CHUNK]
        rows = await session.execute(_locked(cells), {"account": account_id, "keys": some})
        for row in rows.all():
            found[tuple(row[:-1])] = row[-1]
    missing = [key for key in keys if key not in found]
    if missing:
        raise RuntimeError(f"{table.name}: no cell {missing[0]} for its contacts")
    changed = []
    for key in keys:
        stored = found[key]
        contacts = BitMap64.deserialize(stored) if stored else BitMap64()
        contacts |= BitMap64(plus.get(key, ()))
        contacts -= BitMap64(minus.get(key, ()))
        changed.append(
            {
                "account": account_id,
                **{f"key_{name}": value for name, value in zip(cells.keys, key, strict=True)},
                "set": contacts.serialize() if contacts else None,
            }
        )
    await session.execute(_update(cells), changed)


@cache
def _locked(cells: Cells) -> Select[Any]:
    """The sets of a table's cells, by key (`:keys`), locked until the update."""
    table, keys = cells.table, _key_columns(cells)
    return (
        select(*keys, table.c.contacts)  # type: ignore[call-overload]
        .where(
            table.c.account_id == bindparam("account"),
            tuple_(*keys).in_(bindparam("keys", expanding=True)),
        )
        .with_for_update()
    )


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
            {
                "account": account_id,
                **{f"key_{name}": value for name, value in zip(cells.keys, key, strict=True)},
                "set": contacts.serialize(),
            }
            for key, contacts in found.items()
        ]
        for start in range(0, len(updates), 5_000):
            await session.execute(_update(cells), updates[start : start + 5_000])
