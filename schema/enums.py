"""The enums of the contract."""

from enum import Enum

import strawberry


@strawberry.enum(description="Who started a conversation.")
class ConversationSource(Enum):
    FLOW = strawberry.enum_value("FLOW", description="Started by an automation (flow).")
    INBOUND = strawberry.enum_value("INBOUND", description="Started by the contact.")
    INBOX = strawberry.enum_value("INBOX", description="Started by an agent from the inbox.")


@strawberry.enum(description="Where a conversation stands.")
class ConversationStatus(Enum):
    OPEN = strawberry.enum_value("OPEN", description="Open; the contact spoke last.")
    PENDING = strawberry.enum_value(
        "PENDING", description="Open; the business spoke last and waits for the contact."
    )
    CLOSED = strawberry.enum_value("CLOSED", description="Closed by an agent or automatically.")


@strawberry.enum(description="Who sent the first message of a conversation.")
class Direction(Enum):
    INBOUND = strawberry.enum_value("INBOUND", description="The contact wrote first.")
    OUTBOUND = strawberry.enum_value("OUTBOUND", description="The business wrote first.")


@strawberry.enum(description="The report kinds that can be exported.")
class ReportKind(Enum):
    SUMMARY = "SUMMARY"
    AGENTS = "AGENTS"
    TAGS = "TAGS"
    DETAILS = "DETAILS"
    WIDGET = "WIDGET"
