"""A deterministic, realistic inbox written in bulk: the data of `wareports demo` and `bench`.

`generate` walks the chosen period hour by hour in chronological order, gives each hour its share
of the conversations (busier weekdays, office hours in the account's zone), simulates each
conversation's messages, and derives the conversation row from those messages with the very rules
ingestion applies (README: Conversation rules), so the invariants hold by construction. Rows are
written with SQLAlchemy Core `insert()` executemany, one chunk of conversations per transaction;
memory is bounded by the chunk size, never by the number of conversations.
"""

import math
import random
import secrets
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables on the metadata)
from ingest import aggregates
from ingest.conversations import NewMessage
from ingest.rules import built, never_closing
from models.db import transaction
from models.enums import Direction, Source, Status

TABLES = SQLModel.metadata.tables
ACCOUNT = TABLES["account"]
AGENT = TABLES["agent"]
CHANNEL = TABLES["channel"]
CONTACT = TABLES["contact"]
CONTACT_TAG = TABLES["contact_tag"]
CONVERSATION = TABLES["conversation"]
CONVERSATION_TAG = TABLES["conversation_tag"]
MESSAGE = TABLES["message"]
TAG = TABLES["tag"]
WIDGET_BUTTON = TABLES["widget_button"]
WIDGET_CLICK = TABLES["widget_click"]

IN, OUT = Direction.INBOUND, Direction.OUTBOUND
CONTACT_SENDER, AGENT_SENDER, AUTOMATION = "contact", "agent", "automation"

# Relative traffic by local weekday (Monday first) and local hour of day.
WEEKDAY_WEIGHTS = (1.15, 1.2, 1.15, 1.1, 1.0, 0.45, 0.3)
HOUR_WEIGHTS = (
    0.05, 0.03, 0.02, 0.02, 0.03, 0.06, 0.15, 0.35, 0.7, 1.0, 1.1, 1.05,
    0.8, 0.85, 1.0, 1.05, 1.0, 0.9, 0.75, 0.55, 0.45, 0.35, 0.2, 0.1,
)  # fmt: skip
SOURCES, SOURCE_WEIGHTS = (Source.INBOUND, Source.FLOW, Source.INBOX), (0.55, 0.25, 0.20)
RATING_WEIGHTS = (0.05, 0.07, 0.13, 0.30, 0.45)  # ratings 1..5

FIRST_NAMES = (
    "Camille", "Louis", "Léa", "Hugo", "Chloé", "Nathan", "Manon", "Lucas", "Inès", "Jules",
    "Sarah", "Adam", "Emma", "Gabriel", "Jade", "Raphaël", "Alice", "Arthur", "Lina", "Noah",
    "Zoé", "Paul", "Mila", "Tom", "Anna", "Malo", "Rose", "Sacha", "Nina", "Yanis",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet",
)  # fmt: skip
DEFAULT_CONVERSATION_TAGS = (
    "Sales", "Support", "Billing", "Delivery", "Returns", "Complaint", "Onboarding", "Feedback",
)  # fmt: skip
DEFAULT_CONTACT_TAGS = ("VIP", "Newsletter", "B2B", "Returning customer", "Lead")
REFERRERS = (
    "https://www.demo-shop.test/", "https://www.demo-shop.test/pricing",
    "https://www.demo-shop.test/products/sneakers", "https://www.demo-shop.test/contact",
    "https://blog.demo-shop.test/whatsapp-support", "https://www.google.com/",
    "https://www.instagram.com/", None,
)  # fmt: skip
UTM_CAMPAIGNS = ("spring_sale", "black_friday", "newsletter_weekly", "retargeting", None, None)
UTM_MEDIUMS = ("cpc", "email", "social", "referral", None)
UTM_SOURCES = ("google", "newsletter", "instagram", "facebook", None)
UTM_TERMS = ("whatsapp support", "running shoes", "order tracking", None, None, None, None)
UTM_CONTENTS = ("banner", "footer_link", None, None, None)

HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class DemoResult:
    """What `generate` wrote, with its wall time."""

    account_id: int
    conversations: int
    messages: int
    contacts: int
    clicks: int
    agents: int
    seconds: float


@dataclass
class _Message:
    sent_at: int
    direction: str
    sender: str
    agent: int | None  # index into the agents
    type: str


@dataclass
class _Conversation:
    index: int
    phone: str
    messages: list[_Message]
    assignee: int | None = None
    closed_at: int | None = None
    closed_by: int | None = None
    auto_closed: bool = False
    rating: int | None = None
    rated_at: int | None = None
    tags: list[int] = field(default_factory=list)
    click: dict[str, Any] | None = None


@dataclass
class _Chunk:
    conversations: list[_Conversation] = field(default_factory=list)
    profiles: dict[str, tuple[str | None, list[int]]] = field(default_factory=dict)
    clicks: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0


@dataclass(frozen=True)
class _Slot:
    start: int
    stop: int
    hour: int  # local hour of day
    weekday: int  # local weekday, Monday = 0


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` over `weights` by cumulative rounding: exact sum, deterministic."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    counts, running, given = [], 0.0, 0
    for weight in weights:
        running += weight
        upto = round(total * running / whole)
        counts.append(upto - given)
        given = upto
    return counts


def hour_slots(begin: int, end: int, zone: ZoneInfo) -> list[_Slot]:
    """The UTC hours covering [begin, end), clipped to it, with their local hour and weekday."""
    slots = []
    hour_start = begin - begin % HOUR
    while hour_start < end:
        local = datetime.fromtimestamp(hour_start, zone)
        slots.append(
            _Slot(max(begin, hour_start), min(end, hour_start + HOUR), local.hour, local.weekday())
        )
        hour_start += HOUR
    return slots


def slot_weight(slot: _Slot) -> float:
    return WEEKDAY_WEIGHTS[slot.weekday] * HOUR_WEIGHTS[slot.hour] * (slot.stop - slot.start) / HOUR


def demo_phone(index: int, seed: int) -> str:
    """A unique French mobile number per contact index (an affine bijection of 8 digits)."""
    return f"+336{(index * 7_919_113 + seed * 1_000_003) % 10**8:08d}"


class _Simulator:
    """Draws conversations from one seeded random generator, in chronological order."""

    def __init__(
        self,
        rng: random.Random,
        end: int,
        auto_close: int,
        agents: int,
        tags: int,
        contact_tags: int,
        messages: tuple[int, int],
        attribution: float,
    ) -> None:
        self.rng = rng
        self.end = end
        self.auto_close = auto_close
        # Gaps between two messages stay under the auto-close delay, or ingestion would have
        # split the conversation in two.
        self.long_gap = max(60, min(int(0.8 * auto_close), 16 * HOUR))
        self.short_gap = max(30, min(int(0.5 * auto_close), 2 * HOUR))
        self.agents = list(range(agents))
        self.agent_load = [rng.uniform(0.5, 1.6) for _ in self.agents]
        self.agent_speed = [rng.uniform(0.6, 1.8) for _ in self.agents]
        self.tags = list(range(tags))
        self.tag_weights = [1 / (rank + 1) for rank in self.tags]
        self.contact_tags = list(range(contact_tags))
        self.messages = messages
        self.attribution = attribution

    def profile(self) -> tuple[str | None, list[int]]:
        """A new contact's profile name (sometimes none) and contact tags."""
        rng = self.rng
        name = None
        if rng.random() < 0.9:
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        tags: set[int] = set()
        if self.contact_tags:
            for _ in range(rng.choices((0, 1, 2), (0.55, 0.35, 0.10))[0]):
                tags.add(rng.choice(self.contact_tags))
        return name, sorted(tags)

    def conversation(self, index: int, phone: str, start: int, slot: _Slot) -> _Conversation:
        rng = self.rng
        source = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
        agent = rng.choices(self.agents, self.agent_load)[0] if self.agents else None
        if source == Source.INBOUND:
            messages, assignee = self._inbound(start, slot, agent)
        elif source == Source.FLOW:
            messages, assignee = self._flow(start, slot, agent)
        else:
            messages, assignee = self._inbox(start, slot, agent)
        messages = [message for message in messages if message.sent_at <= self.end]
        conversation = _Conversation(index, phone, messages, assignee=assignee)
        self._close_and_rate(conversation)
        if self.tags:
            count = rng.choices((0, 1, 2), (0.3, 0.5, 0.2))[0]
            conversation.tags = sorted(set(rng.choices(self.tags, self.tag_weights, k=count)))
        if messages[0].direction == IN and rng.random() < self.attribution:
            conversation.click = self.click(start - rng.randint(5, 600))
        return conversation

    def click(self, clicked_at: int) -> dict[str, Any]:
        rng = self.rng
        return {
            "clicked_at": clicked_at,
            "button": rng.random() < 0.65,  # True: the first button (home page), else the second
            "referrer": rng.choice(REFERRERS),
            "utm_campaign": rng.choice(UTM_CAMPAIGNS),
            "utm_medium": rng.choice(UTM_MEDIUMS),
            "utm_source": rng.choice(UTM_SOURCES),
            "utm_term": rng.choice(UTM_TERMS),
            "utm_content": rng.choice(UTM_CONTENTS),
        }

    # -- message timelines --------------------------------------------------------------------

    def _latency(self, agent: int, slot: _Slot) -> int:
        """An agent's first response delay: minutes in office hours, next morning otherwise."""
        rng = self.rng
        seconds = rng.lognormvariate(math.log(240), 1.0) * self.agent_speed[agent]
        if slot.weekday >= 5:
            seconds *= 3
        if slot.hour < 8:
            seconds += (8 - slot.hour) * HOUR + rng.randrange(HOUR)
        elif slot.hour >= 19:
            seconds += (32 - slot.hour) * HOUR + rng.randrange(HOUR)
        return max(5, min(int(seconds), self.long_gap))

    def _gap(self, median: float) -> int:
        return max(2, min(int(self.rng.lognormvariate(math.log(median), 1.0)), self.short_gap))

    def _kind(self, sender: str) -> str:
        draw = self.rng.random()
        if sender == CONTACT_SENDER:
            return "text" if draw < 0.86 else "image" if draw < 0.94 else "audio"
        return "text" if draw < 0.95 else "image"

    def _dialogue(self, messages: list[_Message], agent: int, slot: _Slot) -> int:
        """The agent's first response, then replies both ways up to the target length;
        returns the current assignee (sometimes the conversation is handed to a colleague)."""
        rng = self.rng
        at = messages[-1].sent_at + self._latency(agent, slot)
        messages.append(_Message(at, OUT, AGENT_SENDER, agent, self._kind(AGENT_SENDER)))
        if len(self.agents) > 1 and rng.random() < 0.08:
            agent = rng.choice([other for other in self.agents if other != agent])
        target = rng.randint(*self.messages)
        while len(messages) < target:
            contact_turn = messages[-1].direction == OUT
            if contact_turn:
                at += self._gap(90)
                messages.append(_Message(at, IN, CONTACT_SENDER, None, self._kind(CONTACT_SENDER)))
            else:
                at += self._gap(60)
                messages.append(_Message(at, OUT, AGENT_SENDER, agent, self._kind(AGENT_SENDER)))
        return agent

    def _inbound(self, start: int, slot: _Slot, agent: int | None) -> tuple[list[_Message], Any]:
        rng = self.rng
        messages = [_Message(start, IN, CONTACT_SENDER, None, self._kind(CONTACT_SENDER))]
        if rng.random() < 0.4:  # the automation's greeting
            messages.append(_Message(start + rng.randint(1, 5), OUT, AUTOMATION, None, "text"))
        if agent is None or rng.random() < 0.1:  # never answered by a human
            if rng.random() < 0.5:
                at = messages[-1].sent_at + self._gap(300)
                messages.append(_Message(at, IN, CONTACT_SENDER, None, "text"))
            return messages, agent if agent is not None and rng.random() < 0.4 else None
        return messages, self._dialogue(messages, agent, slot)

    def _flow(self, start: int, slot: _Slot, agent: int | None) -> tuple[list[_Message], Any]:
        rng = self.rng
        messages = [_Message(start, OUT, AUTOMATION, None, "template")]
        if rng.random() < 0.5:
            messages.append(_Message(start + rng.randint(1, 3), OUT, AUTOMATION, None, "text"))
        if rng.random() < 0.25:  # the contact never replies to the campaign
            return messages, None
        at = messages[-1].sent_at + min(self._gap(300) * 4, self.long_gap)
        messages.append(_Message(at, IN, CONTACT_SENDER, None, self._kind(CONTACT_SENDER)))
        if rng.random() < 0.6:
            messages.append(_Message(at + rng.randint(1, 3), OUT, AUTOMATION, None, "text"))
        if agent is None or rng.random() < 0.2:  # handled by the automation alone
            return messages, None
        return messages, self._dialogue(messages, agent, slot)

    def _inbox(self, start: int, slot: _Slot, agent: int | None) -> tuple[list[_Message], Any]:
        rng = self.rng
        if agent is None:
            return self._flow(start, slot, None)
        messages = [_Message(start, OUT, AGENT_SENDER, agent, "template")]
        if rng.random() < 0.3:  # no reply from the contact
            return messages, agent
        at = start + min(int(rng.lognormvariate(math.log(1800), 1.0)), self.long_gap)
        messages.append(_Message(at, IN, CONTACT_SENDER, None, self._kind(CONTACT_SENDER)))
        return messages, self._dialogue(messages, agent, slot)

    # -- closing and rating -------------------------------------------------------------------

    def _close_and_rate(self, conversation: _Conversation) -> None:
        rng = self.rng
        last = conversation.messages[-1].sent_at
        if conversation.assignee is not None and rng.random() < 0.55:
            at = last + rng.randint(60, max(61, min(3 * HOUR, self.auto_close - 60)))
            if at <= self.end:
                conversation.closed_at, conversation.closed_by = at, conversation.assignee
        elif last + self.auto_close <= self.end:
            conversation.closed_at, conversation.auto_closed = last + self.auto_close, True
        answered = any(message.direction == IN for message in conversation.messages)
        if conversation.closed_at is None or not answered or rng.random() >= 0.4:
            return
        rated_at = conversation.closed_at + rng.randint(30, HOUR)
        rating = rng.choices((1, 2, 3, 4, 5), RATING_WEIGHTS)[0]
        if rng.random() < 0.1:  # rated again later: the latest rating is the one kept
            rated_at += rng.randint(60, 2 * HOUR)
            rating = rng.choices((1, 2, 3, 4, 5), RATING_WEIGHTS)[0]
        if rated_at <= self.end:
            conversation.rating, conversation.rated_at = rating, rated_at


# -- writing ---------------------------------------------------------------------------------


class _Writer:
    """Writes chunks of simulated conversations with Core executemany; ids come back by
    RETURNING (in parameter order), so concurrent writers on the same tables stay safe."""

    def __init__(
        self,
        account_id: int,
        channel_id: int,
        buttons: list[int],
        agents: list[int],
        tags: list[int],
        contact_tags: list[int],
        first_index: int,
    ) -> None:
        self.account_id = account_id
        self.channel_id = channel_id
        self.buttons = buttons
        self.agents = agents
        self.tags = tags
        self.contact_tags = contact_tags
        self.first_index = first_index
        self.contacts = 0

    async def write(self, connection: AsyncConnection, chunk: _Chunk) -> None:
        contacts = await self._contacts(connection, chunk)
        attributed = [c for c in chunk.conversations if c.click is not None]
        click_ids = await self._insert_returning(
            connection, WIDGET_CLICK, [self._click_row(c.click) for c in attributed if c.click]
        )
        clicks = {c.index: click_id for c, click_id in zip(attributed, click_ids, strict=True)}
        rows = [
            self._conversation_row(c, contacts[c.phone], clicks.get(c.index))
            for c in chunk.conversations
        ]
        ids = await self._insert_returning(connection, CONVERSATION, rows)
        await self._children(connection, chunk, ids, clicks)

    async def _children(
        self, connection: AsyncConnection, chunk: _Chunk, ids: list[int], clicks: dict[int, int]
    ) -> None:
        messages: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        attributions: list[dict[str, int]] = []
        for conversation, conversation_id in zip(chunk.conversations, ids, strict=True):
            messages.extend(self._message_rows(conversation, conversation_id))
            links.extend(
                {
                    "conversation_id": conversation_id,
                    "tag_id": self.tags[tag],
                    "account_id": self.account_id,
                }
                for tag in conversation.tags
            )
            if conversation.index in clicks:
                attributions.append(
                    {"click": clicks[conversation.index], "conversation": conversation_id}
                )
        await _insert(connection, MESSAGE, messages)
        await _insert(connection, CONVERSATION_TAG, links)
        await _insert(connection, WIDGET_CLICK, [self._click_row(click) for click in chunk.clicks])
        if attributions:
            await connection.execute(
                update(WIDGET_CLICK)
                .where(
                    WIDGET_CLICK.c.account_id == self.account_id,
                    WIDGET_CLICK.c.id == bindparam("click"),
                )
                .values(conversation_id=bindparam("conversation")),
                attributions,
            )

    async def _contacts(self, connection: AsyncConnection, chunk: _Chunk) -> dict[str, int]:
        """The ids of the chunk's contacts, creating (with their tags) those not yet stored."""
        phones = sorted({conversation.phone for conversation in chunk.conversations})
        found = await connection.execute(
            select(CONTACT.c.phone, CONTACT.c.id).where(
                CONTACT.c.account_id == self.account_id, CONTACT.c.phone.in_(phones)
            )
        )
        ids: dict[str, int] = {phone: contact_id for phone, contact_id in found.all()}
        missing = [phone for phone in phones if phone not in ids]
        rows = [
            {
                "account_id": self.account_id,
                "phone": phone,
                "wa_id": phone[1:],
                "name": chunk.profiles.get(phone, (None, []))[0],
            }
            for phone in missing
        ]
        for phone, contact_id in zip(
            missing, await self._insert_returning(connection, CONTACT, rows), strict=True
        ):
            ids[phone] = contact_id
        self.contacts += len(missing)
        links = [
            {
                "contact_id": ids[phone],
                "tag_id": self.contact_tags[tag],
                "account_id": self.account_id,
            }
            for phone in missing
            for tag in chunk.profiles.get(phone, (None, []))[1]
        ]
        await _insert(connection, CONTACT_TAG, links)
        return ids

    async def _insert_returning(
        self, connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]
    ) -> list[int]:
        """Insert `rows` with ids reserved up front, and return those ids in order.

        (RETURNING in parameter order makes SQLAlchemy send SQLite one statement per row.)"""
        ids = await reserve_ids(connection, table, len(rows))
        for row, row_id in zip(rows, ids, strict=True):
            row["id"] = row_id
        await _insert(connection, table, rows)
        return ids

    def _click_row(self, click: dict[str, Any]) -> dict[str, Any]:
        row = dict(click)
        first = row.pop("button")
        row["button_id"] = self.buttons[0] if first or len(self.buttons) == 1 else self.buttons[1]
        row["account_id"] = self.account_id
        row["conversation_id"] = None
        row["ref_code"] = secrets.token_hex(6)
        return row

    def _conversation_row(
        self, conversation: _Conversation, contact_id: int, click_id: int | None
    ) -> dict[str, Any]:
        """The row ingestion would keep for these messages (`ingest.rules`), then what the
        generator decided beyond them: the assignee, the closing and the rating."""
        clock = never_closing(self.account_id, self.channel_id)
        messages = [
            NewMessage(
                contact_id=contact_id,
                channel_id=self.channel_id,
                wamid="",
                sender=message.sender,
                sent_at=message.sent_at,
                agent_id=self._agent(message.agent),
            )
            for message in conversation.messages
        ]
        row = built(clock, messages)
        row.update(
            account_id=self.account_id,
            assignee_id=self._agent(conversation.assignee),
            rating=conversation.rating,
            rated_at=conversation.rated_at,
            widget_click_id=click_id,
        )
        if conversation.closed_at is not None:
            row.update(
                closed_at=conversation.closed_at,
                closed_by_id=self._agent(conversation.closed_by),
                auto_closed=conversation.auto_closed,
                status=Status.CLOSED,
            )
        return row

    def _message_rows(
        self, conversation: _Conversation, conversation_id: int
    ) -> list[dict[str, Any]]:
        rows = []
        prefix = f"wamid.demo{self.account_id}.{self.first_index + conversation.index}."
        for number, message in enumerate(conversation.messages):
            outbound = message.direction == OUT
            rows.append(
                {
                    "account_id": self.account_id,
                    "conversation_id": conversation_id,
                    "wamid": prefix + str(number),
                    "direction": message.direction,
                    "sender": message.sender,
                    "agent_id": self._agent(message.agent),
                    "type": message.type,
                    "sent_at": message.sent_at,
                    "status": "read" if outbound else None,
                    "status_at": message.sent_at + 20 if outbound else None,
                    **_pricing(message, number),
                }
            )
        return rows

    def _agent(self, index: int | None) -> int | None:
        return None if index is None else self.agents[index]


def _pricing(message: _Message, number: int) -> dict[str, Any]:
    """What WhatsApp's per-message pricing would bill: a flow's opening message is a marketing
    template, its later ones utility messages, an agent's replies service messages; within the
    customer-service window only the opening template is billed."""
    if message.direction != OUT:
        return {"pricing_category": None, "billable": None, "pricing_at": None}
    if message.sender == AUTOMATION:
        category = "marketing" if number == 0 else "utility"
    else:
        category = "service"
    return {
        "pricing_category": category,
        "billable": category == "marketing",
        "pricing_at": message.sent_at + 20,
    }


async def reserve_ids(connection: AsyncConnection, table: Table, count: int) -> list[int]:
    """`count` unused primary keys of `table` for this transaction's inserts.

    PostgreSQL hands them out from the column's sequence, safe under concurrent writers; on
    SQLite the transaction holds the database's write lock (BEGIN IMMEDIATE), so the keys after
    the current maximum stay free until it commits."""
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        found = await connection.execute(
            select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        )
        return [int(value) for value in found.scalars().all()]
    top = await connection.scalar(select(func.coalesce(func.max(table.c.id), 0)))
    return list(range(int(top or 0) + 1, int(top or 0) + 1 + count))


async def _insert(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(insert(table), rows)


# -- the public entry points -----------------------------------------------------------------


async def generate(
    engine: AsyncEngine,
    account_id: int,
    conversations: int = 20_000,
    days: int = 90,
    seed: int = 1,
    agents: int = 12,
    conversation_tags: Sequence[str] = DEFAULT_CONVERSATION_TAGS,
    contact_tags: Sequence[str] = DEFAULT_CONTACT_TAGS,
    clicks: int | None = None,
    end: int | None = None,
    messages: tuple[int, int] = (5, 8),
    chunk_size: int = 2_000,
) -> DemoResult:
    """Fill an existing account with `conversations` conversations started over the `days` days
    before `end` (default: now), their messages, contacts, tags and `clicks` widget clicks
    (default: 30 % of the conversations, about a third of them attributed to one).

    The same seed, end and arguments give the same rows (ids and click reference codes aside).
    The account's channel and buttons are used, or created when it has none."""
    if conversations < 0 or days < 1 or agents < 0 or chunk_size < 1:
        raise ValueError("conversations >= 0, days >= 1, agents >= 0 and chunk_size >= 1")
    if not 1 <= messages[0] <= messages[1]:
        raise ValueError("messages must be a range (low, high) with 1 <= low <= high")
    began = time.perf_counter()
    end = int(time.time()) if end is None else end
    clicks = round(0.3 * conversations) if clicks is None else clicks
    setup = await _setup(engine, account_id, agents, conversation_tags, contact_tags)
    # Until the rebuild below, the reports read raw rows (the bulk rows bypass ingestion).
    await aggregates.forget_aggregates(engine, account_id)
    rng = random.Random(seed)
    attributed = min(round(clicks / 3), round(0.55 * conversations))
    simulator = _Simulator(
        rng,
        end,
        setup.auto_close,
        len(setup.writer.agents),
        len(setup.writer.tags),
        len(setup.writer.contact_tags),
        messages,
        attributed / (0.55 * conversations) if conversations else 0.0,
    )
    slots = hour_slots(end - days * DAY, end, setup.zone)
    weights = [slot_weight(slot) for slot in slots]
    # Contacts come back for another conversation weeks later, never while one is open.
    contacts = conversations if days < 14 else max(1, math.ceil(0.7 * conversations))
    totals = await _simulate(
        engine,
        setup.writer,
        simulator,
        slots,
        allocate(conversations, weights),
        allocate(max(0, clicks - attributed), weights),
        contacts,
        seed,
        chunk_size,
    )
    await _analyze(engine)
    # Rows written in bulk bypass ingestion: measure them against the account's office hours
    # and targets, if it has any, then recompute its report aggregates (after ANALYZE, so that
    # the rebuild's statements are planned on real statistics).
    async with transaction(engine) as session:
        await aggregates.measure_written(session, account_id, int(time.time()))
    await aggregates.rebuild_aggregates_of(engine, account_id)
    return DemoResult(
        account_id=account_id,
        conversations=conversations,
        messages=totals.messages,
        contacts=setup.writer.contacts,
        clicks=totals.clicks,
        agents=len(setup.writer.agents),
        seconds=time.perf_counter() - began,
    )


@dataclass
class _Totals:
    messages: int = 0
    clicks: int = 0


async def _simulate(
    engine: AsyncEngine,
    writer: _Writer,
    simulator: _Simulator,
    slots: list[_Slot],
    conversation_counts: list[int],
    click_counts: list[int],
    contacts: int,
    seed: int,
    chunk_size: int,
) -> _Totals:
    """Walk the hours in order, simulating their conversations and clicks; write by chunks."""
    rng, totals, chunk, index = simulator.rng, _Totals(), _Chunk(), 0
    for slot, count, click_count in zip(slots, conversation_counts, click_counts, strict=True):
        for start in sorted(rng.randrange(slot.start, slot.stop) for _ in range(count)):
            phone = demo_phone(index % contacts, seed)
            if index < contacts:
                chunk.profiles[phone] = simulator.profile()
            conversation = simulator.conversation(index, phone, start, slot)
            chunk.conversations.append(conversation)
            chunk.messages += len(conversation.messages)
            totals.clicks += conversation.click is not None
            index += 1
        for _ in range(click_count):
            chunk.clicks.append(simulator.click(rng.randrange(slot.start, slot.stop)))
        totals.clicks += click_count
        if len(chunk.conversations) >= chunk_size:
            totals.messages += await _flush(engine, writer, chunk)
            chunk = _Chunk()
    totals.messages += await _flush(engine, writer, chunk)
    return totals


async def _flush(engine: AsyncEngine, writer: _Writer, chunk: _Chunk) -> int:
    if not chunk.conversations and not chunk.clicks:
        return 0
    async with engine.execution_options(write=True).begin() as connection:
        await writer.write(connection, chunk)
    return chunk.messages


@dataclass(frozen=True)
class _Setup:
    writer: _Writer
    zone: ZoneInfo
    auto_close: int


async def _setup(
    engine: AsyncEngine,
    account_id: int,
    agents: int,
    conversation_tags: Sequence[str],
    contact_tags: Sequence[str],
) -> _Setup:
    """The account's zone and delay; its channel, buttons, agents and tags (created if missing)."""
    async with engine.execution_options(write=True).begin() as connection:
        account = (
            await connection.execute(
                select(ACCOUNT.c.timezone, ACCOUNT.c.auto_close_seconds).where(
                    ACCOUNT.c.id == account_id
                )
            )
        ).first()
        if account is None:
            raise ValueError(f"no account {account_id}")
        channel_id = await _channel(connection, account_id)
        buttons = await _buttons(connection, account_id, channel_id)
        agent_ids = await _named(
            connection, AGENT, account_id, "email", [_agent_row(n) for n in range(agents)]
        )
        tag_ids = await _named(
            connection, TAG, account_id, "name_key", _tag_rows("conversation", conversation_tags)
        )
        contact_tag_ids = await _named(
            connection, TAG, account_id, "name_key", _tag_rows("contact", contact_tags)
        )
        first_index = await connection.scalar(
            select(func.count())
            .select_from(CONVERSATION)
            .where(CONVERSATION.c.account_id == account_id)
        )
    writer = _Writer(
        account_id, channel_id, buttons, agent_ids, tag_ids, contact_tag_ids, first_index or 0
    )
    return _Setup(writer, ZoneInfo(account.timezone), account.auto_close_seconds)


async def _channel(connection: AsyncConnection, account_id: int) -> int:
    found = await connection.scalar(
        select(func.min(CHANNEL.c.id)).where(CHANNEL.c.account_id == account_id)
    )
    if found is not None:
        return int(found)
    row = {
        "account_id": account_id,
        "phone_number_id": f"demo-{account_id}-{secrets.token_hex(4)}",
        "display_number": "+33900000000",
        "app_secret": secrets.token_urlsafe(24),
        "verify_token": secrets.token_urlsafe(16),
    }
    return int(
        (await connection.execute(insert(CHANNEL).returning(CHANNEL.c.id), row)).scalar_one()
    )


async def _buttons(connection: AsyncConnection, account_id: int, channel_id: int) -> list[int]:
    found = await connection.execute(
        select(WIDGET_BUTTON.c.id)
        .where(WIDGET_BUTTON.c.account_id == account_id)
        .order_by(WIDGET_BUTTON.c.id)
    )
    ids = list(found.scalars().all())
    if ids:
        return ids
    rows = [
        {
            "account_id": account_id,
            "channel_id": channel_id,
            "key": f"demo-{slug}-{secrets.token_hex(4)}",
            "name": name,
            "prefill": prefill,
        }
        for slug, name, prefill in (
            ("home", "Home page button", "Hello! I have a question"),
            ("product", "Product page button", "Hi, is this product in stock?"),
        )
    ]
    statement = insert(WIDGET_BUTTON).returning(WIDGET_BUTTON.c.id, sort_by_parameter_order=True)
    return list((await connection.execute(statement, rows)).scalars().all())


def _agent_row(number: int) -> dict[str, Any]:
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[(number * 7) % len(LAST_NAMES)]
    suffix = "" if number < len(FIRST_NAMES) else str(number // len(FIRST_NAMES))
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
    email = f"{ascii_name.decode().lower()}{suffix}@demo-shop.test"
    return {"email": email, "name": f"{first} {last}"}


def _tag_rows(kind: str, names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"kind": kind, "name": name, "name_key": name.lower()} for name in names]


async def _named(
    connection: AsyncConnection,
    table: Table,
    account_id: int,
    key: str,
    rows: list[dict[str, Any]],
) -> list[int]:
    """The ids of `rows` in order, by their unique `key` column: existing rows are reused."""
    if not rows:
        return []
    kind = rows[0].get("kind")
    query = select(table.c[key], table.c.id).where(
        table.c.account_id == account_id, table.c[key].in_([row[key] for row in rows])
    )
    if kind is not None:
        query = query.where(table.c.kind == kind)
    ids = dict((await connection.execute(query)).tuples().all())
    missing = [dict(row, account_id=account_id) for row in rows if row[key] not in ids]
    if missing:
        statement = insert(table).returning(table.c[key], table.c.id, sort_by_parameter_order=True)
        ids.update((await connection.execute(statement, missing)).tuples().all())
    return [ids[row[key]] for row in rows]


async def _analyze(engine: AsyncEngine) -> None:
    """Refresh the planner's statistics after a bulk load (SQLite has none until ANALYZE)."""
    async with engine.connect() as connection:
        # A full ANALYZE (8 s for a million conversations): with `analysis_limit` SQLite guessed
        # that `account_id = ?` selects ~1,000 of 700,000 contacts on a one-account database and
        # read every contact for a 500-row details page (118 ms instead of 3 ms).
        await connection.exec_driver_sql("ANALYZE")
        await connection.commit()


async def delete_account(engine: AsyncEngine, account_id: int) -> None:
    """Delete an account and every row that carries its id, children before parents."""
    async with engine.execution_options(write=True).begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if "account_id" in table.c:
                await connection.execute(delete(table).where(table.c.account_id == account_id))
        await connection.execute(delete(ACCOUNT).where(ACCOUNT.c.id == account_id))


async def accounts_named(engine: AsyncEngine, name: str) -> list[int]:
    async with engine.connect() as connection:
        found = await connection.execute(select(ACCOUNT.c.id).where(ACCOUNT.c.name == name))
        return list(found.scalars().all())


async def is_demo_account(engine: AsyncEngine, account_id: int) -> bool:
    """Whether deleting the account loses nothing but demo data: its channels are all ones
    `generate` made, or it has neither channel nor conversation."""
    async with engine.connect() as connection:
        found = await connection.execute(
            select(CHANNEL.c.phone_number_id).where(CHANNEL.c.account_id == account_id)
        )
        numbers = list(found.scalars().all())
        if numbers:
            return all(number.startswith("demo-") for number in numbers)
        conversations = await connection.scalar(
            select(func.count()).where(CONVERSATION.c.account_id == account_id)
        )
        return not conversations
