"""The shared `ReportFilter` input of every report."""

from datetime import date

import strawberry

from schema.enums import ConversationSource


@strawberry.input(
    description="The filter every report takes. Lists combine with AND between them and OR "
    "inside one list; an empty or absent list does not filter. Tag names and e-mails match "
    "case-insensitively."
)
class ReportFilter:
    from_: date = strawberry.field(name="from", description="First local day, inclusive.")
    to: date = strawberry.field(description="Last local day, inclusive.")
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
