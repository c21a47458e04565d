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
    ADS = "ADS"


@strawberry.enum(
    description="A range of local days resolved in the filter's zone when the query runs "
    "(today: the local date now)."
)
class RangePreset(Enum):
    TODAY = strawberry.enum_value("TODAY", description="Today.")
    YESTERDAY = strawberry.enum_value("YESTERDAY", description="Yesterday.")
    LAST_7_DAYS = strawberry.enum_value(
        "LAST_7_DAYS", description="The 7 local days ending today, today included."
    )
    LAST_30_DAYS = strawberry.enum_value(
        "LAST_30_DAYS", description="The 30 local days ending today, today included."
    )
    LAST_90_DAYS = strawberry.enum_value(
        "LAST_90_DAYS", description="The 90 local days ending today, today included."
    )
    LAST_365_DAYS = strawberry.enum_value(
        "LAST_365_DAYS", description="The 365 local days ending today, today included."
    )
    THIS_WEEK = strawberry.enum_value("THIS_WEEK", description="ISO Monday to today.")
    LAST_WEEK = strawberry.enum_value(
        "LAST_WEEK", description="Monday to Sunday of the week before this one."
    )
    THIS_MONTH = strawberry.enum_value("THIS_MONTH", description="The 1st to today.")
    LAST_MONTH = strawberry.enum_value("LAST_MONTH", description="The whole previous month.")
    THIS_QUARTER = strawberry.enum_value(
        "THIS_QUARTER", description="The quarter's first day (1 Jan, Apr, Jul, Oct) to today."
    )
    LAST_QUARTER = strawberry.enum_value("LAST_QUARTER", description="The whole previous quarter.")
    THIS_YEAR = strawberry.enum_value("THIS_YEAR", description="1 January to today.")
    LAST_YEAR = strawberry.enum_value("LAST_YEAR", description="The whole previous year.")


@strawberry.enum(description="The period to compare a range with.")
class PeriodShift(Enum):
    PREVIOUS_PERIOD = strawberry.enum_value(
        "PREVIOUS_PERIOD",
        description="As many days immediately before; after a calendar preset (THIS_/LAST_ "
        "week, month, quarter, year), the previous calendar unit, clipped to as many days from "
        "its start as the range has (THIS_MONTH on 15 November: 1-15 October).",
    )
    PREVIOUS_YEAR = strawberry.enum_value(
        "PREVIOUS_YEAR",
        description="The same dates a year earlier (29 February: 28 February).",
    )
