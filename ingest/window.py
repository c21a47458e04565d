"""The 24-hour customer-service window: outside it a business may only send paid templates.

A conversation *missed its window* (`window_missed`, counted by `windowMissedConversations`)
when one of the contact's messages got no reply from the business (an agent or an automation,
any outbound message) within 24 hours after it, once those 24 hours have passed: a reply at
23 h 59 min is in time, one at 24 h 00 min 01 s is not, and a later reply does not undo it.

It is brought up to date where every change of a conversation meets the aggregates
(`ingest.aggregates.sync_conversations`), as of that moment; the auto-close job's pass
(`missed_since`) finds the conversations whose window ran out while they waited.
"""

from sqlalchemy import BigInteger, ColumnElement, Table, bindparam, not_, select, true, update
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Conversation, Message
from models.enums import Direction
from models.sql import of_conversation, one_of, values_of

WINDOW_SECONDS = 24 * 3600
# How far back the pass looks for messages whose window ran out: a server stopped longer than
# this leaves those conversations to their next change.
LOOKBACK_SECONDS = 2 * 3600

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]


def missed(now: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether the conversation (a row of the statement's `conversation`) has a contact's
    message left without a reply for 24 hours."""
    sent, reply = MESSAGE.alias("sent"), MESSAGE.alias("reply")
    replied = (
        select(reply.c.id)
        .where(
            of_conversation(reply, sent.c.account_id, sent.c.conversation_id),
            reply.c.direction == Direction.OUTBOUND,
            reply.c.sent_at >= sent.c.sent_at,
            reply.c.sent_at <= sent.c.sent_at + WINDOW_SECONDS,
        )
        .exists()
    )
    return (
        select(sent.c.id)
        .where(
            of_conversation(sent, CONVERSATION.c.account_id, CONVERSATION.c.id),
            sent.c.direction == Direction.INBOUND,
            sent.c.sent_at + WINDOW_SECONDS < now,
            not_(replied),
        )
        .exists()
    )


_IDS = values_of("ids", BigInteger())
_NOW = bindparam("now", type_=BigInteger())
_MISSED = missed(_NOW)
# Only the rows whose state changes are written (it flips).
SETTLE = (
    update(CONVERSATION)
    .where(
        CONVERSATION.c.account_id == bindparam("b_account_id"),
        one_of(CONVERSATION.c.id, _IDS),
        CONVERSATION.c.window_missed != _MISSED,
    )
    .values(window_missed=not_(CONVERSATION.c.window_missed))
)


async def settle(session: AsyncSession, account_id: int, ids: list[int], now: int) -> None:
    if ids:
        await session.execute(SETTLE, {"b_account_id": account_id, "ids": ids, "now": now})


async def measure_account(session: AsyncSession, account_id: int, now: int) -> None:
    """Every conversation of the account, after rows were written in bulk (`ingest.demo`)."""
    statement = (
        update(CONVERSATION)
        .where(CONVERSATION.c.account_id == account_id)
        .values(window_missed=missed(_NOW))
    )
    await session.execute(statement, {"now": now})


async def missed_since(session: AsyncSession, account_id: int, now: int) -> list[int]:
    """The conversations not marked yet with a contact's message whose window ran out during
    the last LOOKBACK_SECONDS (the pass then recomputes them: replied or missed)."""
    sent = MESSAGE.alias("sent")
    query = (
        select(sent.c.conversation_id)
        .distinct()
        .join(CONVERSATION, of_conversation(sent, CONVERSATION.c.account_id, CONVERSATION.c.id))
        .where(
            sent.c.account_id == account_id,
            sent.c.direction == Direction.INBOUND,
            sent.c.sent_at > now - WINDOW_SECONDS - LOOKBACK_SECONDS,
            sent.c.sent_at < now - WINDOW_SECONDS,
            CONVERSATION.c.window_missed != true(),
        )
    )
    return list((await session.scalars(query)).all())
