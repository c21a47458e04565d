"""Contacts, agents and tags: phone normalization and race-free upserts (INSERT ... ON CONFLICT)."""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import String, Table, bindparam, delete, update
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest.transactions import remembered
from models import Agent, Contact, ContactTag, Tag
from models.phones import country_of
from models.sql import one_of, values_of

E164 = re.compile(r"\+[1-9][0-9]{5,14}")
_SEPARATORS = re.compile(r"[\s\-().]")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_TAG_LENGTH = 100


def normalize_phone(text: str) -> str:
    """E.164 from an E.164 number or WhatsApp id digits (no `+`); raises ValueError otherwise."""
    compact = _SEPARATORS.sub("", text)
    if not compact.startswith("+"):
        compact = "+" + compact
    if not E164.fullmatch(compact):
        raise ValueError("must be an E.164 number like +33612345678, or WhatsApp id digits")
    return compact


def normalize_email(text: str) -> str:
    email = text.strip().lower()
    if not EMAIL.fullmatch(email):
        raise ValueError("must be an e-mail address like ana@example.com")
    return email


def normalize_tag(text: str) -> str:
    name = text.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_TAG_LENGTH:
        raise ValueError(f"must be at most {MAX_TAG_LENGTH} characters")
    return name


async def insert_ignoring_conflicts(
    session: AsyncSession, table: type[SQLModel], values: dict[str, Any]
) -> bool:
    """INSERT that does nothing when a unique key already holds the row, on either engine;
    says whether the row was inserted.

    Unlike select-then-insert, two concurrent writers cannot both insert (a duplicate) or fail
    (a unique violation): the loser of the race simply inserts nothing.
    """
    key = list(table.__table__.primary_key.columns)  # type: ignore[attr-defined]
    statement = (
        dialect_insert(session, table).values(**values).on_conflict_do_nothing().returning(*key)
    )
    return (await session.execute(statement)).first() is not None


def dialect_insert(session: AsyncSession, table: type[SQLModel] | Table) -> Any:
    """The engine's own INSERT, which has `on_conflict_do_nothing` on SQLite and PostgreSQL."""
    bind = session.bind
    return insert_for(bind.dialect.name if bind is not None else "sqlite", table)


def insert_for(dialect: str, table: type[SQLModel] | Table) -> Any:
    """`dialect_insert` by the dialect's name, for statements built once per dialect."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


async def lock_contacts(
    session: AsyncSession,
    account_id: int,
    phones: Iterable[str],
    create: Iterable[str] = (),
    names: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """The ids of the contacts with these phones, row-locked until commit; those in `create` are
    created when missing, and `names` renames them. Rows are locked in phone order so that
    concurrent writers lock in the same order and cannot deadlock; holding the lock serializes
    the choice of a contact's conversation (a no-op on SQLite, whose writers are serialized).
    A few statements whatever the number of phones: one look-up, one INSERT of the missing,
    one look-up of those, one UPDATE (executemany) of the names that change."""
    creatable, names = set(create), names or {}
    wanted = sorted(set(phones) | creatable)
    if not wanted:
        return {}
    found = await _lock_phones(session, account_id, wanted)
    missing = [phone for phone in wanted if phone not in found and phone in creatable]
    if missing:
        # Created with their name and country at once (Core rows, every value given: no
        # ORM bulk path, no column default called per row, no rename after).
        rows = [
            {
                "account_id": account_id,
                "phone": phone,
                "wa_id": phone[1:],
                "name": names.get(phone) or None,
                "country": country_of(phone),
            }
            for phone in missing
        ]
        await session.execute(dialect_insert(session, CONTACT).on_conflict_do_nothing(), rows)
        found |= await _lock_phones(session, account_id, missing)
    renames = [
        {"b_account_id": account_id, "key": found[phone][0], "name": names[phone]}
        for phone in wanted
        if phone in found and names.get(phone) and names[phone] != found[phone][1]
    ]
    if renames:
        await session.execute(RENAME, renames)
    return {phone: row[0] for phone, row in found.items()}


async def _lock_phones(
    session: AsyncSession, account_id: int, phones: list[str]
) -> dict[str, tuple[int, str | None]]:
    rows = await session.execute(LOCK_PHONES, {"account_id": account_id, "phones": phones})
    return {phone: (key, name) for key, phone, name in rows.all()}


CONTACT = Contact.__table__  # type: ignore[attr-defined]
LOCK_PHONES = (
    select_columns(CONTACT.c.id, CONTACT.c.phone, CONTACT.c.name)
    .where(
        CONTACT.c.account_id == bindparam("account_id"),
        one_of(CONTACT.c.phone, values_of("phones", String())),
    )
    .order_by(CONTACT.c.phone)
    .with_for_update()
)
RENAME = (
    update(CONTACT)
    .where(CONTACT.c.account_id == bindparam("b_account_id"), CONTACT.c.id == bindparam("key"))
    .values(name=bindparam("name"))
)


async def rename_contact(
    session: AsyncSession, account_id: int, contact_id: int, name: str
) -> None:
    await session.execute(
        update(Contact)
        .where(
            col(Contact.account_id) == account_id,
            col(Contact.id) == contact_id,
            col(Contact.name).is_distinct_from(name),
        )
        .values(name=name)
    )


async def upsert_agent(
    session: AsyncSession, account_id: int, email: str, name: str | None = None
) -> int:
    """The agent with this (lower-cased) e-mail, created when missing; `name` renames it.
    Known ids are remembered for the rest of the transaction (agents are never deleted)."""
    email = email.lower()
    known = _known(session)
    agent_id = known.get(("agent", account_id, email))
    if agent_id is None:
        await insert_ignoring_conflicts(
            session, Agent, {"account_id": account_id, "email": email, "name": name}
        )
        agent_id = await session.scalar(
            select(Agent.id).where(Agent.account_id == account_id, Agent.email == email)
        )
        assert agent_id is not None
        known[("agent", account_id, email)] = agent_id
    if name is not None:
        await session.execute(
            update(Agent)
            .where(
                col(Agent.account_id) == account_id,
                col(Agent.id) == agent_id,
                col(Agent.name).is_distinct_from(name),
            )
            .values(name=name)
        )
    return agent_id


async def upsert_tag(session: AsyncSession, account_id: int, kind: str, name: str) -> int:
    """The tag of this kind whose name matches case-insensitively, created when missing."""
    tag_id = _known(session).get(("tag", account_id, kind, name.lower()))
    if tag_id is not None:
        return tag_id
    await insert_ignoring_conflicts(
        session,
        Tag,
        {"account_id": account_id, "kind": kind, "name": name, "name_key": name.lower()},
    )
    tag_id = await find_tag(session, account_id, kind, name)
    assert tag_id is not None
    return tag_id


async def find_tag(session: AsyncSession, account_id: int, kind: str, name: str) -> int | None:
    """The tag's id, remembered for the rest of the transaction once found (tags are never
    deleted)."""
    key = ("tag", account_id, kind, name.lower())
    known = _known(session)
    if key not in known:
        found = await session.scalar(
            select(Tag.id).where(
                Tag.account_id == account_id, Tag.kind == kind, Tag.name_key == name.lower()
            )
        )
        if found is None:
            return None
        known[key] = found
    return known[key]


AGENT = Agent.__table__  # type: ignore[attr-defined]
TAG = Tag.__table__  # type: ignore[attr-defined]
AGENTS_BY_EMAIL = select_columns(AGENT.c.email, AGENT.c.id).where(
    AGENT.c.account_id == bindparam("account_id"),
    one_of(AGENT.c.email, values_of("emails", String())),
)
TAGS_BY_KEY = select_columns(TAG.c.kind, TAG.c.name_key, TAG.c.id).where(
    TAG.c.account_id == bindparam("account_id"),
    one_of(TAG.c.kind, values_of("kinds", String())),  # the key is (account, kind, name)
    one_of(TAG.c.name_key, values_of("keys", String())),
)


async def upsert_agents(session: AsyncSession, account_id: int, emails: Iterable[str]) -> None:
    """`upsert_agent` (without a name) for each of these e-mails, in this order, in three
    statements (an event batch's agents): the missing ones are created in the order given, and
    every id is remembered for the rest of the transaction."""
    known = _known(session)
    wanted = list(dict.fromkeys(email.lower() for email in emails))
    wanted = [email for email in wanted if ("agent", account_id, email) not in known]
    if not wanted:
        return
    await _remember_agents(session, account_id, wanted)
    missing = [email for email in wanted if ("agent", account_id, email) not in known]
    if not missing:
        return
    await session.execute(
        dialect_insert(session, AGENT).on_conflict_do_nothing(),
        [{"account_id": account_id, "email": email, "name": None} for email in missing],
    )
    await _remember_agents(session, account_id, missing)


async def _remember_agents(session: AsyncSession, account_id: int, emails: list[str]) -> None:
    known = _known(session)
    bound = {"account_id": account_id, "emails": emails}
    for email, found in (await session.execute(AGENTS_BY_EMAIL, bound)).all():
        known[("agent", account_id, email)] = found


async def upsert_tags(
    session: AsyncSession, account_id: int, tags: Iterable[tuple[str, str]]
) -> None:
    """`upsert_tag` for each (kind, name), in this order, in three statements: a missing tag is
    created with the first spelling given, and every id is remembered."""
    known = _known(session)
    spelled: dict[tuple[str, str], str] = {}
    for kind, name in tags:
        spelled.setdefault((kind, name.lower()), name)
    wanted = [key for key in spelled if ("tag", account_id, *key) not in known]
    if not wanted:
        return
    await _remember_tags(session, account_id, wanted)
    missing = [key for key in wanted if ("tag", account_id, *key) not in known]
    if not missing:
        return
    await session.execute(
        dialect_insert(session, TAG).on_conflict_do_nothing(),
        [
            {"account_id": account_id, "kind": kind, "name": spelled[kind, key], "name_key": key}
            for kind, key in missing
        ],
    )
    await _remember_tags(session, account_id, missing)


async def _remember_tags(
    session: AsyncSession, account_id: int, wanted: list[tuple[str, str]]
) -> None:
    known = _known(session)
    bound = {
        "account_id": account_id,
        "kinds": sorted({kind for kind, _ in wanted}),
        "keys": sorted({key for _, key in wanted}),
    }
    for kind, key, found in (await session.execute(TAGS_BY_KEY, bound)).all():
        if (kind, key) in wanted:
            known[("tag", account_id, kind, key)] = found


def _known(session: AsyncSession) -> dict[tuple[Any, ...], int]:
    """Ids of agents and tags looked up in the session's current transaction."""
    return remembered(session, "known ids")


async def tag_contact(session: AsyncSession, account_id: int, contact_id: int, tag: str) -> None:
    tag_id = await upsert_tag(session, account_id, "contact", tag)
    await insert_ignoring_conflicts(
        session, ContactTag, {"account_id": account_id, "contact_id": contact_id, "tag_id": tag_id}
    )


async def untag_contact(session: AsyncSession, account_id: int, contact_id: int, tag: str) -> None:
    tag_id = await find_tag(session, account_id, "contact", tag)
    if tag_id is not None:
        await session.execute(
            delete(ContactTag).where(
                col(ContactTag.account_id) == account_id,
                col(ContactTag.contact_id) == contact_id,
                col(ContactTag.tag_id) == tag_id,
            )
        )
