"""The `agentReport` root field and its types."""

import strawberry

from resolvers import agents
from schema.context import CanReadReports, WareportsInfo
from schema.metrics import (
    RANGE_DESCRIPTION,
    DateRange,
    FilterArgument,
    Metrics,
    MetricsBucket,
    report_filter,
    selected,
)
from schema.types import Agent


@strawberry.type(description="One agent: the conversations currently assigned to them.")
class AgentRow:
    agent: Agent = strawberry.field(description="The current assignee.")
    metrics: Metrics = strawberry.field(
        description="Figures of the conversations currently assigned to the agent that started "
        "in range and match the filter; messages: all messages (both directions, any sender) "
        "sent during the range in conversations currently assigned to the agent that match "
        "the filter."
    )
    sent_messages: int = strawberry.field(
        description="Outbound messages the agent sent during the range in ANY conversation, "
        "whoever it is assigned to now; the filter's contactTags, conversationTags, "
        "agentEmails and sources do not apply to this count (only the date range and zone)."
    )
    daily: list[MetricsBucket] = strawberry.field(
        description="The agent's metrics for every local day from..to, zero-filled."
    )

    @classmethod
    def of(cls, row: agents.AgentRow) -> "AgentRow":
        return cls(
            agent=Agent.of(row.agent),
            metrics=Metrics.of(row.metrics),
            sent_messages=row.sent_messages,
            daily=MetricsBucket.all(row.daily),
        )


@strawberry.type(description="The filter's conversations grouped by current assignee.")
class AgentReport:
    range: DateRange = strawberry.field(description=RANGE_DESCRIPTION)
    rows: list[AgentRow] = strawberry.field(
        description="One row per agent currently assigned to at least one conversation that "
        "started in range and matches the filter; most conversations first, then e-mail. "
        "Unassigned conversations have no row."
    )


@strawberry.type
class AgentQuery:
    @strawberry.field(
        description="The conversations that started in range and match the filter, grouped by "
        "their current assignee. Only the selected parts are computed.",
        permission_classes=[CanReadReports],
    )
    async def agent_report(self, info: WareportsInfo, filter: FilterArgument) -> AgentReport:
        flt, asked, context = report_filter(filter, info), selected(info)["rows"], info.context
        halves = asked.halves(asked["metrics"], asked["daily"]["metrics"])
        parts = asked.parts(agents.AgentPart)
        report = await agents.agent_report(
            context.session, context.account_id, flt, parts=parts, halves=halves
        )
        return AgentReport(range=DateRange.of(flt), rows=[AgentRow.of(row) for row in report.rows])
