"""The agent report: one row per current assignee of the conversations in range."""

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Message
from models.enums import Direction
from models.timing import report_part
from resolvers import aggregates, entities
from resolvers.filters import Filter
from resolvers.grouped import groups
from resolvers.metrics import BOTH_HALVES, Grouping, Half, Metrics, MetricsBucket


@dataclass(frozen=True)
class AgentRow:
    """One agent: the metrics of the conversations currently assigned to them, and the
    messages they sent themselves in any conversation."""

    agent: entities.AgentRow
    metrics: Metrics
    sent_messages: int
    daily: tuple[MetricsBucket, ...]


@dataclass(frozen=True)
class AgentReport:
    rows: tuple[AgentRow, ...]  # most conversations first, then e-mail


class AgentPart(Enum):
    """What an agent row holds; each value is its field's name (GraphQL: camelCase)."""

    METRICS = "metrics"
    SENT_MESSAGES = "sent_messages"
    DAILY = "daily"


AGENT_PARTS = frozenset(AgentPart)


@report_part("agents")
async def agent_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[AgentPart] = AGENT_PARTS,
    halves: frozenset[Half] = BOTH_HALVES,
) -> AgentReport:
    """Rows for the agents currently assigned to conversations that started in range and match
    the filter. Parts not in `parts` come back empty (zero metrics/count, no buckets)."""

    async def labels(ids: list[Any]) -> dict[Any, entities.AgentRow]:
        return await entities.agents_by_id(session, account_id, ids)

    rows = await groups(
        session,
        account_id,
        flt,
        Grouping.ASSIGNEE,
        metrics=AgentPart.METRICS in parts,
        daily=AgentPart.DAILY in parts,
        halves=halves,
        labels=labels,
        rank=lambda _key, figures, agent: (-figures.conversations, agent.email),
    )
    ranked = [row.key for row in rows]
    sent = {}
    if AgentPart.SENT_MESSAGES in parts:
        sent = await sent_messages(session, account_id, flt, ranked)
    return AgentReport(
        tuple(
            AgentRow(
                agent=row.label,
                metrics=row.metrics,
                sent_messages=sent.get(row.key, 0),
                daily=row.daily,
            )
            for row in rows
        )
    )


async def sent_messages(
    session: AsyncSession, account_id: int, flt: Filter, agent_ids: list[int]
) -> dict[int, int]:
    """Outbound messages each agent sent during the range, in any conversation: the filter's
    tag, agent and source lists do not apply (they select conversations, not senders)."""
    if not agent_ids:
        return {}
    kept = await aggregates.sent_messages(session, account_id, flt, agent_ids)
    if kept is not None:
        return kept
    days = flt.calendar
    rows = await session.execute(
        select(Message.agent_id, func.count())
        .where(
            col(Message.account_id) == account_id,
            col(Message.agent_id).in_(agent_ids),
            col(Message.direction) == Direction.OUTBOUND,
            col(Message.sent_at) >= days.start,
            col(Message.sent_at) < days.end,
        )
        .group_by(Message.agent_id)
    )
    return {agent_id: count for agent_id, count in rows.all()}
