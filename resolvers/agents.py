"""The agent report: one row per current assignee of the conversations in range."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Message
from models.enums import Direction
from models.timing import report_part
from resolvers import aggregates, entities
from resolvers.filters import Filter
from resolvers.metrics import (
    BOTH_HALVES,
    EMPTY,
    Grouping,
    Half,
    Metrics,
    MetricsBucket,
    Period,
    compute_metrics,
    series,
)


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


AGENT_PARTS = frozenset({"metrics", "sent_messages", "daily"})


@report_part("agents")
async def agent_report(
    session: AsyncSession,
    account_id: int,
    flt: Filter,
    *,
    parts: frozenset[str] = AGENT_PARTS,
    halves: frozenset[Half] = BOTH_HALVES,
) -> AgentReport:
    """Rows for the agents currently assigned to conversations that started in range and match
    the filter. Parts not in `parts` come back empty (zero metrics/count, no buckets)."""
    # The conversation half is always needed: it decides which agents have a row, and the order.
    wanted = (halves if "metrics" in parts else frozenset()) | {Half.CONVERSATIONS}
    totals = await compute_metrics(
        session, account_id, flt, grouping=Grouping.ASSIGNEE, halves=wanted
    )
    found = {key: metrics for (key, _), metrics in totals.items() if metrics.conversations}
    agents = await entities.agents_by_id(session, account_id, list(found)) if found else {}
    ranked = sorted(found, key=lambda key: (-found[key].conversations, agents[key].email))
    sent = await sent_messages(session, account_id, flt, ranked) if "sent_messages" in parts else {}
    daily = None
    if "daily" in parts and ranked:
        daily = await compute_metrics(
            session, account_id, flt, grouping=Grouping.ASSIGNEE, period=Period.DAY, halves=halves
        )
    return AgentReport(
        tuple(
            AgentRow(
                agent=agents[key],
                metrics=found[key] if "metrics" in parts else EMPTY,
                sent_messages=sent.get(key, 0),
                daily=() if daily is None else series(daily, flt, Period.DAY, key),
            )
            for key in ranked
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
