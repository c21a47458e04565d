"""The tables of the data model; every row carries `account_id`, every instant is UTC epoch seconds.

Instants are stored as integer seconds since the Unix epoch (UTC): the same arithmetic works on
SQLite and PostgreSQL (durations are plain subtractions, local days are `(t + offset) / 86400`),
and integer keys make the report indexes smaller and faster than text or timestamp columns.
"""

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from models.enums import Status
from models.metrics import CONVERSATION_FIGURES, MESSAGE_FIGURES, Figure
from models.phones import country_default

# Ids that grow with traffic (messages, clicks, pending statuses) and the columns holding them:
# BIGINT on PostgreSQL, where a SERIAL stops at 2,147,483,647; SQLite's INTEGER PRIMARY KEY
# holds 64 bits already, and only that spelling is its row id.
GROWING_ID = BigInteger().with_variant(Integer(), "sqlite")


def _instant() -> object:
    return Field(default=None, sa_column=Column(BigInteger, nullable=True))


# --- the tenant in every key (issue 20, `models.distribution`) ---------------------------------
#
# A table holding an account's rows is keyed by (account_id, id), and points to another such
# table by (account_id, <its id>): what a distributed PostgreSQL (Citus) needs to keep an
# account's rows on one node. Ids still come from one sequence per table (SQLite: the row id,
# which stays `id INTEGER PRIMARY KEY` there, with a unique index on (id, account_id) for the
# keys that point to it; see migration 0014).


def _serial_id(sa_type: Any = None) -> Any:
    """The id of a table keyed by (account_id, id), numbered by the database."""
    kwargs: dict[str, Any] = {"autoincrement": True}
    if sa_type is not None:
        return Field(default=None, primary_key=True, sa_type=sa_type, sa_column_kwargs=kwargs)
    return Field(default=None, primary_key=True, sa_column_kwargs=kwargs)


# SQLite: a table keyed by (account_id, ...) alone is stored in its key's order (WITHOUT ROWID):
# a look-up is one seek, not an index seek then a row id seek.
CLUSTERED = {"sqlite_with_rowid": False}


def _tenant_key() -> PrimaryKeyConstraint:
    return PrimaryKeyConstraint("account_id", "id")


def _points_to(table: str, column: str, name: str) -> ForeignKeyConstraint:
    """(account_id, `column`) -> `table` (account_id, id)."""
    return ForeignKeyConstraint(
        ["account_id", column], [f"{table}.account_id", f"{table}.id"], name=name
    )


def _tag_links(owner: str) -> tuple[Any, ...]:
    """The keys of `<owner>_tag`: by owner, then by tag (which owners have a tag)."""
    column = f"{owner}_id"
    return (
        PrimaryKeyConstraint("account_id", column, "tag_id"),
        _points_to(owner, column, f"fk_{owner}_tag_{owner}"),
        _points_to("tag", "tag_id", f"fk_{owner}_tag_tag"),
        Index(f"ix_{owner}_tag_tag", "account_id", "tag_id", column),
        CLUSTERED,
    )


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    timezone: str = "UTC"
    auto_close_seconds: int = 24 * 3600
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class OfficeHoursRow(SQLModel, table=True):
    """An account's office hours (`models.office_hours`), in its zone; no row: always open."""

    __tablename__ = "office_hours"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    schedule: str = Field(description="The weekly schedule in its canonical syntax.")
    closed_dates: str = Field(default="", description="ISO dates, comma-separated, ascending.")


class ServiceLevel(SQLModel, table=True):
    """An account's service-level targets (`ingest.service_levels`); no row: none."""

    __tablename__ = "service_level"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    first_response_seconds: int | None = None  # from the contact's first message
    resolution_seconds: int | None = None  # from the conversation's start to its close
    business_hours: bool = True  # the targets count office hours (else calendar time)


class Channel(SQLModel, table=True):
    """A WhatsApp business number of an account, as the Cloud API names it."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    phone_number_id: str = Field(unique=True)
    display_number: str
    app_secret: str
    verify_token: str
    # Who the messages sent from the WhatsApp Business app on this number are from (webhook
    # `smb_message_echoes`); None: `business-app@<display number digits>`.
    business_app_agent: str | None = None

    @property
    def echo_agent(self) -> str:
        digits = "".join(char for char in self.display_number if char.isdigit())
        return (self.business_app_agent or f"business-app@{digits}").lower()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    name: str | None = None
    token_hash: str = Field(unique=True)  # SHA-256 hex of the token; the token itself is never kept
    scopes: str  # space-free, comma-separated
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_at: int | None = _instant()  # type: ignore[assignment]
    last_used_at: int | None = _instant()  # type: ignore[assignment]


class Agent(SQLModel, table=True):
    __table_args__ = (_tenant_key(), UniqueConstraint("account_id", "email"))

    id: int | None = _serial_id()
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    email: str  # stored lower-cased
    name: str | None = None


class Contact(SQLModel, table=True):
    __table_args__ = (_tenant_key(), UniqueConstraint("account_id", "phone"))

    id: int | None = _serial_id()
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    phone: str  # E.164, "+33612345678"
    wa_id: str | None = None
    name: str | None = None
    # ISO 3166-1 alpha-2 region of the number ("FR"), None when it names none; set from `phone`
    # by every insert that does not give it (`models.phones.country_default`).
    country: str | None = Field(
        default=None, sa_column=Column(String(2), nullable=True, default=country_default)
    )


class Tag(SQLModel, table=True):
    """A tag name of one kind: `contact` or `conversation`; `name_key` is the lower-cased name."""

    __table_args__ = (_tenant_key(), UniqueConstraint("account_id", "kind", "name_key"))

    id: int | None = _serial_id()
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    kind: str
    name: str
    name_key: str


class ContactTag(SQLModel, table=True):
    __tablename__ = "contact_tag"
    __table_args__ = _tag_links("contact")

    contact_id: int = Field(primary_key=True)
    tag_id: int = Field(primary_key=True)
    account_id: int = Field(foreign_key="account.id", primary_key=True)


class Conversation(SQLModel, table=True):
    """One conversation with the figures its reports need, kept up to date at ingestion."""

    __table_args__ = (
        _tenant_key(),
        _points_to("contact", "contact_id", "fk_conversation_contact"),
        _points_to("agent", "assignee_id", "fk_conversation_assignee"),
        _points_to("agent", "closed_by_id", "fk_conversation_closed_by"),
        Index("ix_conversation_started", "account_id", "started_at", "id"),
        # Covers the raw distinct-contacts counts (the report aggregates cannot add them up).
        Index(
            "ix_conversation_contacts",
            "account_id",
            "started_at",
            "contact_id",
            "source",
            "assignee_id",
        ),
        Index("ix_conversation_contact", "account_id", "contact_id", "started_at"),
        Index("ix_conversation_open", "account_id", "status", "last_message_at"),
        Index("ix_conversation_assignee", "account_id", "assignee_id"),
        # The rated conversations, for a drill-down into a rating (issue 17): a page of them and
        # their count without reading every conversation in range. Partial: a conversation
        # enters it when rated (few are), so ingesting the others never writes it.
        Index(
            "ix_conversation_rated",
            "account_id",
            "rating",
            "started_at",
            "status",
            sqlite_where=text("rating IS NOT NULL"),
            postgresql_where=text("rating IS NOT NULL"),
        ),
        # The conversations still in time for a service-level target (`ingest.autoclose`).
        *(
            Index(
                f"ix_conversation_{target}_due",
                "account_id",
                f"{target}_due_at",
                sqlite_where=text(f"sla_{target}_met IS NULL AND {target}_due_at IS NOT NULL"),
                postgresql_where=text(f"sla_{target}_met IS NULL AND {target}_due_at IS NOT NULL"),
            )
            for target in ("first_response", "resolution")
        ),
    )

    id: int | None = _serial_id()
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    contact_id: int
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    assignee_id: int | None = None
    source: str  # FLOW | INBOUND | INBOX
    source_explicit: bool = False  # set by a conversation.started event, not derived from messages
    direction: str  # INBOUND | OUTBOUND: who sent the first message
    status: str = Status.OPEN  # models.enums.Status
    started_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_inbound_at: int | None = _instant()  # type: ignore[assignment]
    first_response_at: int | None = _instant()  # type: ignore[assignment]
    last_message_at: int | None = _instant()  # type: ignore[assignment]
    closed_at: int | None = _instant()  # type: ignore[assignment]
    closed_by_id: int | None = None
    auto_closed: bool = False
    rating: int | None = None
    rated_at: int | None = _instant()  # type: ignore[assignment]
    message_count: int = 0
    inbound_count: int = 0
    outbound_count: int = 0
    widget_click_id: int | None = Field(default=None, sa_type=GROWING_ID)
    referral_source_url: str | None = None
    referral_source_id: str | None = None
    referral_source_type: str | None = None
    referral_headline: str | None = None
    # Office hours and service levels (`ingest.service_levels`): stored when the account has
    # office hours (null: calendar time), resp. service-level targets (null: none, or neither
    # met nor breached yet).
    first_response_business_seconds: int | None = _instant()  # type: ignore[assignment]
    duration_business_seconds: int | None = _instant()  # type: ignore[assignment]
    started_outside_office_hours: bool = False
    first_response_due_at: int | None = _instant()  # type: ignore[assignment]
    resolution_due_at: int | None = _instant()  # type: ignore[assignment]
    sla_first_response_met: bool | None = None
    sla_resolution_met: bool | None = None
    # A contact's message left 24 hours without a reply (`ingest.window`).
    window_missed: bool = False
    # Of its messages, how many the sender edited or deleted since (`ingest.changes`).
    edited_messages: int = 0
    deleted_messages: int = 0


class ConversationTag(SQLModel, table=True):
    __tablename__ = "conversation_tag"
    __table_args__ = _tag_links("conversation")

    conversation_id: int = Field(primary_key=True)
    tag_id: int = Field(primary_key=True)
    account_id: int = Field(foreign_key="account.id", primary_key=True)


class Message(SQLModel, table=True):
    __table_args__ = (
        _tenant_key(),
        _points_to("conversation", "conversation_id", "fk_message_conversation"),
        _points_to("agent", "agent_id", "fk_message_agent"),
        UniqueConstraint("account_id", "wamid"),
        # `direction` makes it cover the raw message counts (no table look-up per message).
        Index("ix_message_sent", "account_id", "sent_at", "conversation_id", "direction"),
        # `direction` makes it cover a conversation's figures (`ingest.conversations`): without
        # statistics, SQLite would otherwise prefer ix_message_sent, covering but by account.
        Index("ix_message_conversation", "account_id", "conversation_id", "sent_at", "direction"),
        Index("ix_message_agent", "account_id", "agent_id", "sent_at"),
        # The failed messages of a range (summaryReport.failureReasons) without the others.
        Index("ix_message_status", "account_id", "status", "sent_at"),
    )

    id: int | None = _serial_id(GROWING_ID)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    conversation_id: int
    wamid: str
    direction: str  # INBOUND | OUTBOUND
    sender: str  # contact | agent | automation
    agent_id: int | None = None
    type: str = "text"
    body: str | None = None
    sent_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str | None = None  # sent | delivered | read | played | failed (outbound only)
    status_at: int | None = _instant()  # type: ignore[assignment]
    error_code: int | None = None
    error_title: str | None = None
    # The first edit and the revoke (delete for everyone) of the message, if any (`ingest.changes`).
    edited_at: int | None = _instant()  # type: ignore[assignment]
    deleted_at: int | None = _instant()  # type: ignore[assignment]
    # What WhatsApp bills the message as: the pricing of its latest status (by the status's
    # timestamp) that carried one (`ingest.statuses`); None until a status carries it.
    pricing_category: str | None = None  # marketing | utility | authentication | service ...
    billable: bool | None = None
    pricing_at: int | None = _instant()  # type: ignore[assignment]


class PendingChange(SQLModel, table=True):
    """An edit or revoke that arrived before the message it changes; applied when the message
    is recorded (`ingest.changes`), forgotten after 7 days like a pending status."""

    __tablename__ = "pending_change"
    __table_args__ = (_tenant_key(), Index("ix_pending_change_wamid", "account_id", "wamid"))

    id: int | None = _serial_id(GROWING_ID)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    wamid: str  # the original message's
    kind: str  # edited | deleted
    at: int = Field(sa_column=Column(BigInteger, nullable=False))


class PendingStatus(SQLModel, table=True):
    """A delivery status that arrived before its message; applied when the message is recorded."""

    __tablename__ = "pending_status"
    __table_args__ = (_tenant_key(), Index("ix_pending_status_wamid", "account_id", "wamid"))

    id: int | None = _serial_id(GROWING_ID)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    wamid: str
    status: str
    at: int = Field(sa_column=Column(BigInteger, nullable=False))
    error_code: int | None = None
    error_title: str | None = None
    pricing_category: str | None = None
    billable: bool | None = None


class WidgetButton(SQLModel, table=True):
    __tablename__ = "widget_button"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    channel_id: int = Field(foreign_key="channel.id")
    key: str = Field(unique=True)
    name: str
    prefill: str = ""


class WidgetClick(SQLModel, table=True):
    __tablename__ = "widget_click"
    __table_args__ = (
        _tenant_key(),
        _points_to("conversation", "conversation_id", "fk_widget_click_conversation"),
        Index("ix_widget_click_at", "account_id", "clicked_at"),
        Index("ix_widget_click_conversation", "account_id", "conversation_id"),
        UniqueConstraint("account_id", "ref_code"),
    )

    id: int | None = _serial_id(GROWING_ID)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    button_id: int = Field(foreign_key="widget_button.id")
    clicked_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    referrer: str | None = None  # the referring page's URL without its query string
    utm_campaign: str | None = None
    utm_medium: str | None = None
    utm_source: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    ref_code: str
    conversation_id: int | None = None


class IngestedEvent(SQLModel, table=True):
    """The ids of inbox events already stored, so that a replayed event changes nothing."""

    __tablename__ = "ingested_event"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    event_id: str = Field(primary_key=True)
    type: str
    received_at: int = Field(sa_column=Column(BigInteger, nullable=False))


# --- report aggregates, kept as data arrives (ingest/aggregates.py, resolvers/aggregates.py) ---
#
# Day numbers count the local days since 1970-01-01 in the zone of `aggregate_state.timezone`.
# An assignee of 0 stands for "unassigned" (key columns cannot be NULL). Averages are kept as
# sums and counts, so any set of rows adds up to exact figures. Derived data never keeps an account
# from being deleted (ON DELETE CASCADE).


class AggregateState(SQLModel, table=True):
    """The zone an account's aggregates count days in; no row: not built, reports read raw rows."""

    __tablename__ = "aggregate_state"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    timezone: str
    rebuilt_at: int = Field(sa_column=Column(BigInteger, nullable=False))


def _figures(name: str, doc: str, figures: tuple[Figure, ...]) -> Any:
    """A mixin with one integer column per figure of `models.metrics`."""
    namespace: dict[str, Any] = {
        "__doc__": doc,
        "__module__": __name__,
        "__annotations__": {figure.name: int for figure in figures},
    }
    for figure in figures:
        namespace[figure.name] = Field(default=0, sa_type=figure.sql_type)
    return type(name, (SQLModel,), namespace)


if TYPE_CHECKING:  # (what mypy knows of the mixins made from the registry below)

    class _ConversationFigures(SQLModel):
        pass

    class _MessageFigures(SQLModel):
        pass

else:
    _ConversationFigures = _figures(
        "_ConversationFigures",
        "Sums over the conversations that started on a day (`models.metrics`).",
        CONVERSATION_FIGURES,
    )
    _MessageFigures = _figures(
        "_MessageFigures", "Counts of the messages sent on a day.", MESSAGE_FIGURES
    )


class _ContactSet(SQLModel):
    """The contacts with a conversation counted in the cell, as a serialized Roaring bitmap of
    contact ids (`ingest.contact_sets`); null: none."""

    contacts: bytes | None = Field(default=None, sa_type=LargeBinary)


class DailyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """Per local day, source and current assignee: the conversations that started that day and
    the messages sent that day in conversations of that source and assignee."""

    __tablename__ = "daily_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    day: int = Field(primary_key=True)
    source: str = Field(primary_key=True)
    assignee_id: int = Field(primary_key=True)


class SourceDailyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """The same figures per local day and source only: fifty times fewer rows than
    `daily_figures` for an account with fifty agents, for the reports no agent filters."""

    __tablename__ = "source_daily_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    day: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class TagDailyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """The same figures per conversation tag (a conversation counts once per tag it has)."""

    __tablename__ = "tag_daily_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    day: int = Field(primary_key=True)
    tag_id: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class TagAgentDailyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """Per assignee first, for tag reports filtered by agent (a few agents of many)."""

    __tablename__ = "tag_agent_daily_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    assignee_id: int = Field(primary_key=True)
    day: int = Field(primary_key=True)
    tag_id: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class TagPairDailyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """Per conversation tag of the conversations that also have `with_tag_id` (itself included),
    for tag reports filtered by one tag."""

    __tablename__ = "tag_pair_daily_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    with_tag_id: int = Field(primary_key=True)
    day: int = Field(primary_key=True)
    tag_id: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class HourlyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """The same figures per local hour (`hour`: local hours since 1970-01-01 00:00, a repeated
    hour's two occurrences in one) and source: the heatmap's weekdays and hours."""

    __tablename__ = "hourly_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    hour: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class AgentHourlyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """Per current assignee first, local hour and source: the heatmap filtered by agent."""

    __tablename__ = "agent_hourly_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    assignee_id: int = Field(primary_key=True)
    hour: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class TagHourlyFigures(_ConversationFigures, _MessageFigures, _ContactSet, table=True):
    """Per conversation tag first, local hour and source: the heatmap filtered by one tag."""

    __tablename__ = "tag_hourly_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    tag_id: int = Field(primary_key=True)
    hour: int = Field(primary_key=True)
    source: str = Field(primary_key=True)


class AgentDailyMessages(SQLModel, table=True):
    """Outbound messages an agent sent on a local day, in any conversation."""

    __tablename__ = "agent_daily_messages"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    day: int = Field(primary_key=True)
    agent_id: int = Field(primary_key=True)
    sent_messages: int = 0


class ClickDailyFigures(SQLModel, table=True):
    """Website button clicks per local day and per value of one of their dimensions (`button`
    name, `referrer`, `utm_campaign`, ...), with the conversations attributed to them. `key` is
    the value (None: none given); `key_hash` stands for it in the key, as a referrer may be
    longer than an index entry."""

    __tablename__ = "click_daily_figures"

    account_id: int = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    dimension: str = Field(primary_key=True)
    day: int = Field(primary_key=True)
    key_hash: str = Field(primary_key=True)
    key: str | None = None
    clicks: int = 0
    conversations: int = 0


class AggregatedConversation(_ConversationFigures, table=True):
    """What the aggregates count for one conversation: its cell, its figures and the messages
    counted so far (those with an id up to `last_message_id`). Ingestion subtracts this and
    adds the conversation's current contribution, so every change is an exact delta."""

    __tablename__ = "aggregated_conversation"
    __table_args__ = (PrimaryKeyConstraint("account_id", "conversation_id"), CLUSTERED)

    conversation_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    account_id: int = Field(foreign_key="account.id", ondelete="CASCADE", primary_key=True)
    day: int
    hour: int = 0  # the local hour it started, its cell in the hourly tables
    source: str
    assignee_id: int
    last_message_id: int = Field(default=0, sa_type=GROWING_ID)


class AggregatedConversationTag(SQLModel, table=True):
    """The conversation tags the aggregates count for a conversation."""

    __tablename__ = "aggregated_conversation_tag"
    __table_args__ = (PrimaryKeyConstraint("account_id", "conversation_id", "tag_id"), CLUSTERED)

    conversation_id: int = Field(primary_key=True)
    tag_id: int = Field(primary_key=True)
    account_id: int = Field(foreign_key="account.id", ondelete="CASCADE", primary_key=True)
