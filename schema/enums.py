"""The enums of the contract."""

from enum import Enum

import strawberry

from models import enums as stored


@strawberry.enum(description="Who started a conversation.")
class ConversationSource(Enum):
    FLOW = strawberry.enum_value(
        stored.Source.FLOW.value, description="Started by an automation (flow)."
    )
    INBOUND = strawberry.enum_value(
        stored.Source.INBOUND.value, description="Started by the contact."
    )
    INBOX = strawberry.enum_value(
        stored.Source.INBOX.value, description="Started by an agent from the inbox."
    )


@strawberry.enum(description="Where a conversation stands.")
class ConversationStatus(Enum):
    OPEN = strawberry.enum_value(
        stored.Status.OPEN.value, description="Open; the contact spoke last."
    )
    PENDING = strawberry.enum_value(
        stored.Status.PENDING.value,
        description="Open; the business spoke last and waits for the contact.",
    )
    CLOSED = strawberry.enum_value(
        stored.Status.CLOSED.value, description="Closed by an agent or automatically."
    )


@strawberry.enum(description="Who sent the first message of a conversation.")
class Direction(Enum):
    INBOUND = strawberry.enum_value(
        stored.Direction.INBOUND.value, description="The contact wrote first."
    )
    OUTBOUND = strawberry.enum_value(
        stored.Direction.OUTBOUND.value, description="The business wrote first."
    )


@strawberry.enum(description="The report kinds that can be exported.")
class ReportKind(Enum):
    SUMMARY = "SUMMARY"
    AGENTS = "AGENTS"
    TAGS = "TAGS"
    DETAILS = "DETAILS"
    WIDGET = "WIDGET"
