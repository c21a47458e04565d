"""The shared `ReportFilter` input of every report."""

from datetime import date

import strawberry

from schema.enums import ConversationSource, ConversationStatus, PeriodShift, RangePreset


@strawberry.input(
    description="A range of seconds: `min` inclusive, `max` exclusive, null = unbounded. A "
    "distribution bucket `upToSeconds: b` after `upToSeconds: a` is {min: a + 1, max: b + 1}."
)
class SecondsRange:
    min: int | None = strawberry.field(default=None, description="Inclusive lower bound.")
    max: int | None = strawberry.field(default=None, description="Exclusive upper bound.")


@strawberry.input(
    description="The filter every report takes. Lists combine with AND between them and OR "
    "inside one list; an empty or absent list does not filter. Tag names and e-mails match "
    "case-insensitively."
)
class ReportFilter:
    from_: date | None = strawberry.field(
        default=None,
        name="from",
        description="First local day, inclusive; with `to`, unless a `preset` is given.",
    )
    to: date | None = strawberry.field(
        default=None,
        description="Last local day, inclusive; with `from`, unless a `preset` is given.",
    )
    preset: RangePreset | None = strawberry.field(
        default=None,
        description="The range as a preset instead of from/to (giving both, or neither, is "
        "BAD_USER_INPUT on filter.preset); resolved in the filter's zone when the query runs. "
        "Every report echoes the range it resolved to (`range`).",
    )
    shift: PeriodShift | None = strawberry.field(
        default=None,
        description="Moves the resolved range to the period to compare it with: "
        "`now: summaryReport(filter: $f) prev: summaryReport(filter: {...$f, shift: "
        "PREVIOUS_PERIOD})`.",
    )
    timezone: str | None = strawberry.field(
        default=None,
        description='IANA zone ("Europe/Paris") whose calendar defines days and weeks; '
        "default: the account's zone.",
    )
    contact_tags: list[str] | None = strawberry.field(
        default=None, description="Conversations whose contact has ANY of these tags."
    )
    conversation_tags: list[str] | None = strawberry.field(
        default=None, description="Conversations that have ANY of these tags."
    )
    agent_emails: list[str] | None = strawberry.field(
        default=None, description="Conversations assigned to ANY of these agents."
    )
    sources: list[ConversationSource] | None = strawberry.field(
        default=None, description="Conversations started by ANY of these sources; default: all."
    )
    weekdays: list[int] | None = strawberry.field(
        default=None,
        description="Drill-down: conversations that started on ANY of these local weekdays "
        "(1 = Monday .. 7 = Sunday) in the filter's zone.",
    )
    hours: list[int] | None = strawberry.field(
        default=None,
        description="Drill-down: conversations that started in ANY of these local hours (0 to "
        "23) in the filter's zone. With `weekdays`: a heatmap cell.",
    )
    first_response_seconds: SecondsRange | None = strawberry.field(
        default=None,
        description="Drill-down: answered conversations whose first response took this many "
        "seconds (as avgFirstResponseSeconds measures it).",
    )
    duration_seconds: SecondsRange | None = strawberry.field(
        default=None,
        description="Drill-down: closed conversations that lasted this many seconds.",
    )
    ratings: list[int] | None = strawberry.field(
        default=None,
        description="Drill-down: conversations whose latest rating is ANY of these (1 to 5).",
    )
    statuses: list[ConversationStatus] | None = strawberry.field(
        default=None, description="Drill-down: conversations in ANY of these statuses now."
    )
    answered: bool | None = strawberry.field(
        default=None,
        description="Drill-down: true, conversations with a first human response; false, "
        "those without one.",
    )
    sla_breached: bool | None = strawberry.field(
        default=None,
        description="Drill-down: true, conversations that breached a service-level target "
        "(slaFirstResponseBreached or slaResolutionBreached); false, those that breached none.",
    )
    ad_source_ids: list[str] | None = strawberry.field(
        default=None,
        description="Drill-down: conversations whose first message came from ANY of these "
        "click-to-WhatsApp ads (`adReport { byAd { sourceId } }`).",
    )
    buttons: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Drill-down: conversations attributed to a click on ANY of these WhatsApp "
        "buttons (`buttons { id }`).",
    )
