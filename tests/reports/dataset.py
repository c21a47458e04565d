"""The hand-built dataset every report test reads, and the GraphQL pieces to query it.

Account zone Europe/Paris; the report range is 2026-03-27 (Friday) .. 2026-04-02 (Thursday).
Paris is UTC+1 until 2026-03-29 01:00 UTC, then UTC+2: the local day 2026-03-29 lasts 23 hours
(2026-03-28 23:00 UTC .. 2026-03-29 22:00 UTC). All instants below are UTC.

Agents alice, bob, carol (dave has nothing). Contacts c1 [VIP], c2 [VIP, Wholesale], c3,
c4 [Wholesale], c5. Conversation tags Sales, Billing, Support.

    K0 c1 INBOUND alice [Sales]: in 03-26 10:00, alice 10:05, in 03-27 06:00, alice 06:10;
       closed 03-27 07:00. Started before the range; two of its messages are inside.
    K8 c4 INBOUND carol [Sales]: in 03-26 23:30, carol 23:35, in 23:40; closed 03-27 00:30;
       rated 4. Paris: 03-27 00:30, in range; UTC: 03-26, out.
    K1 c1 INBOUND alice [Sales, Billing]: in 03-27 08:00, alice 08:02, in 08:10, alice 08:20;
       closed 09:00; rated 3 at 09:05, then 5 at 09:30 (the latest wins).
    K2 c2 INBOUND bob [Support]: in 03-27 22:50, bob 23:20; closed 03-28 00:00. In Paris it
       crosses local midnight (the reply falls on 03-28).
    K3 c3 FLOW unassigned: bot 03-29 00:30, in 01:30 (the 23-hour day); unanswered;
       auto-closed 24 h after its last message, 03-30 01:30.
    K4 c4 INBOX bob [Billing]: bob 03-29 21:30, in 21:45, bob 22:15 (Paris: 03-30 00:15);
       open (PENDING); the reply before the contact's message is not a response.
    K5 c2 FLOW alice [Sales]: bot 03-30 07:00, in 07:05, bot 07:06, alice 07:20; closed 08:00;
       rated 2. The automation message is not a response.
    K6 c5 INBOUND bob: in 03-31 12:00, alice 12:03, bob 12:30; open; answered by alice, then
       reassigned to bob.
    K7 c3 INBOUND alice [Support]: in 04-02 22:30, alice 22:40; open. Paris: 04-03, out of
       range; UTC: in.

Delivery statuses of the outbound messages: delivered, but K1's alice 08:20 read, K4's bob 22:15
played, K2's bob 23:20 only sent, K6's bob 12:30 none yet; K3's bot 00:30 failed (131026) and
K5's bot 07:06 failed (131049).

Clicks: W1 Homepage 03-27 07:55 -> K1; W2 Homepage 03-27 10:00; W3 Pricing 03-26 23:10 -> K8;
W4 Pricing 03-31 11:55 -> K6; W5 Homepage 04-02 22:20 -> K7; W6 Homepage 03-29 10:00.
Another account holds a conversation, an agent, tags and a click in range that must never show.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TestAccount, create_test_account
from tests.factories import at, automation, building, inbound, reply, with_status

PARIS = "Europe/Paris"
# The errors WhatsApp gives with failed statuses (code, title).
UNDELIVERABLE = (131026, "Message undeliverable")
ENGAGEMENT = (131049, "This message was not delivered to maintain healthy ecosystem engagement.")
RANGE = {"from": "2026-03-27", "to": "2026-04-02"}
DAYS = [
    "2026-03-27",
    "2026-03-28",
    "2026-03-29",
    "2026-03-30",
    "2026-03-31",
    "2026-04-01",
    "2026-04-02",
]

METRICS = """
fragment M on Metrics {
  conversations inboundConversations distinctContacts messages inboundMessages outboundMessages
  closedConversations avgDurationSeconds avgFirstResponseSeconds avgRating ratedConversations
}
"""


def m(
    *,
    conversations: int,
    inbound_conversations: int,
    distinct_contacts: int,
    messages: int,
    inbound_messages: int,
    outbound_messages: int,
    closed: int,
    avg_duration: float | None,
    avg_first_response: float | None,
    avg_rating: float | None,
    rated: int,
) -> dict[str, Any]:
    """Expected Metrics (their GraphQL names, from these shorter ones)."""
    return {
        "conversations": conversations,
        "inboundConversations": inbound_conversations,
        "distinctContacts": distinct_contacts,
        "messages": messages,
        "inboundMessages": inbound_messages,
        "outboundMessages": outbound_messages,
        "closedConversations": closed,
        "avgDurationSeconds": avg_duration,
        "avgFirstResponseSeconds": avg_first_response,
        "avgRating": avg_rating,
        "ratedConversations": rated,
    }


ZERO = m(
    conversations=0,
    inbound_conversations=0,
    distinct_contacts=0,
    messages=0,
    inbound_messages=0,
    outbound_messages=0,
    closed=0,
    avg_duration=None,
    avg_first_response=None,
    avg_rating=None,
    rated=0,
)


def daily(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Expected daily buckets over DAYS: the days named in `figures`, zeros elsewhere."""
    return [{"start": day, "metrics": figures.get(day, ZERO)} for day in DAYS]


def utc(text: str) -> int:
    return at(text, "UTC")


@dataclass(frozen=True)
class Dataset:
    account: TestAccount
    other: TestAccount
    ids: dict[str, int]  # conversation name -> id


async def build_dataset(engine: AsyncEngine) -> Dataset:
    account = await create_test_account(engine, name="Acme", timezone=PARIS)
    ids: dict[str, int] = {}
    async with building(engine, account.id) as make:
        alice = await make.agent("alice@acme.test", "Alice")
        bob = await make.agent("bob@acme.test", "Bob")
        carol = await make.agent("carol@acme.test")
        await make.agent("dave@acme.test", "Dave")
        c1 = await make.contact("+33600000001", "Léa", tags=["VIP"])
        c2 = await make.contact("+33600000002", "Marc", tags=["VIP", "Wholesale"])
        c3 = await make.contact("+33600000003")
        c4 = await make.contact("+33600000004", "Nora", tags=["Wholesale"])
        c5 = await make.contact("+33600000005", "Omar")

        k0 = await make.conversation(
            c1,
            [
                inbound(utc("2026-03-26 10:00")),
                reply(utc("2026-03-26 10:05"), alice),
                inbound(utc("2026-03-27 06:00")),
                reply(utc("2026-03-27 06:10"), alice),
            ],
            assignee=alice,
            tags=["Sales"],
            closed_at=utc("2026-03-27 07:00"),
            closed_by=alice,
        )
        k8 = await make.conversation(
            c4,
            [
                inbound(utc("2026-03-26 23:30")),
                reply(utc("2026-03-26 23:35"), carol),
                inbound(utc("2026-03-26 23:40")),
            ],
            assignee=carol,
            tags=["Sales"],
            closed_at=utc("2026-03-27 00:30"),
            closed_by=carol,
            ratings=[(utc("2026-03-27 00:40"), 4)],
        )
        k1 = await make.conversation(
            c1,
            [
                inbound(utc("2026-03-27 08:00")),
                reply(utc("2026-03-27 08:02"), alice),
                inbound(utc("2026-03-27 08:10")),
                with_status(reply(utc("2026-03-27 08:20"), alice), "read"),
            ],
            assignee=alice,
            tags=["Sales", "Billing"],
            closed_at=utc("2026-03-27 09:00"),
            closed_by=alice,
            ratings=[(utc("2026-03-27 09:05"), 3), (utc("2026-03-27 09:30"), 5)],
        )
        k2 = await make.conversation(
            c2,
            [
                inbound(utc("2026-03-27 22:50")),
                with_status(reply(utc("2026-03-27 23:20"), bob), "sent"),
            ],
            assignee=bob,
            tags=["Support"],
            closed_at=utc("2026-03-28 00:00"),
            closed_by=bob,
        )
        k3 = await make.conversation(
            c3,
            [
                with_status(automation(utc("2026-03-29 00:30")), "failed", UNDELIVERABLE),
                inbound(utc("2026-03-29 01:30")),
            ],
            auto_close_seconds=24 * 3600,
        )
        k4 = await make.conversation(
            c4,
            [
                reply(utc("2026-03-29 21:30"), bob),
                inbound(utc("2026-03-29 21:45")),
                with_status(reply(utc("2026-03-29 22:15"), bob), "played"),
            ],
            started_at=utc("2026-03-29 21:30"),
            source="INBOX",
            assignee=bob,
            tags=["Billing"],
        )
        k5 = await make.conversation(
            c2,
            [
                automation(utc("2026-03-30 07:00")),
                inbound(utc("2026-03-30 07:05")),
                with_status(automation(utc("2026-03-30 07:06")), "failed", ENGAGEMENT),
                reply(utc("2026-03-30 07:20"), alice),
            ],
            assignee=alice,
            tags=["Sales"],
            closed_at=utc("2026-03-30 08:00"),
            closed_by=alice,
            ratings=[(utc("2026-03-30 08:10"), 2)],
        )
        k6 = await make.conversation(
            c5,
            [
                inbound(utc("2026-03-31 12:00")),
                reply(utc("2026-03-31 12:03"), alice),
                with_status(reply(utc("2026-03-31 12:30"), bob), None),
            ],
            assignee=bob,
        )
        k7 = await make.conversation(
            c3,
            [inbound(utc("2026-04-02 22:30")), reply(utc("2026-04-02 22:40"), alice)],
            assignee=alice,
            tags=["Support"],
        )
        homepage = await make.button("Homepage")
        pricing = await make.button("Pricing")
        spring_cpc = {"utm_campaign": "spring", "utm_medium": "cpc", "utm_source": "google"}
        await make.click(
            homepage,
            utc("2026-03-27 07:55"),
            referrer="https://acme.test/",
            utm_term="whatsapp",
            utm_content="a",
            conversation=k1,
            **spring_cpc,
        )
        await make.click(
            homepage, utc("2026-03-27 10:00"), referrer="https://acme.test/", **spring_cpc
        )
        await make.click(
            pricing, utc("2026-03-26 23:10"), referrer="https://acme.test/pricing", conversation=k8
        )
        await make.click(
            pricing,
            utc("2026-03-31 11:55"),
            utm_campaign="spring",
            utm_medium="email",
            utm_source="newsletter",
            conversation=k6,
        )
        await make.click(
            homepage, utc("2026-04-02 22:20"), referrer="https://acme.test/", conversation=k7
        )
        await make.click(
            homepage,
            utc("2026-03-29 10:00"),
            referrer="https://blog.acme.test/post",
            utm_campaign="autumn",
            utm_source="blog",
        )
        for name, row in (
            ("K0", k0),
            ("K1", k1),
            ("K2", k2),
            ("K3", k3),
            ("K4", k4),
            ("K5", k5),
            ("K6", k6),
            ("K7", k7),
            ("K8", k8),
        ):
            assert row.id is not None
            ids[name] = row.id
    other = await _other_account(engine)
    return Dataset(account, other, ids)


async def _other_account(engine: AsyncEngine) -> TestAccount:
    """Another account in the same zone with look-alike rows in range: never to be counted."""
    other = await create_test_account(engine, name="Other", timezone=PARIS)
    async with building(engine, other.id) as make:
        alice = await make.agent("alice@acme.test", "Other Alice")
        contact = await make.contact("+33600000001", tags=["VIP"])
        conversation = await make.conversation(
            contact,
            [inbound(utc("2026-03-28 10:00")), reply(utc("2026-03-28 10:01"), alice)],
            assignee=alice,
            tags=["Sales"],
            closed_at=utc("2026-03-28 11:00"),
            closed_by=alice,
            ratings=[(utc("2026-03-28 11:00"), 1)],
        )
        button = await make.button("Homepage")
        await make.click(
            button,
            utc("2026-03-28 09:59"),
            referrer="https://acme.test/",
            utm_campaign="spring",
            conversation=conversation,
        )
    return other
