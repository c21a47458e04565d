"""SQLModel tables, the async engine and sessions, and the Alembic migrations."""

from models.tables import (
    Account,
    Agent,
    ApiToken,
    Channel,
    Contact,
    ContactTag,
    Conversation,
    ConversationTag,
    IngestedEvent,
    Message,
    PendingChange,
    PendingStatus,
    Tag,
    WidgetButton,
    WidgetClick,
)

__all__ = [
    "Account",
    "Agent",
    "ApiToken",
    "Channel",
    "Contact",
    "ContactTag",
    "Conversation",
    "ConversationTag",
    "IngestedEvent",
    "Message",
    "PendingChange",
    "PendingStatus",
    "Tag",
    "WidgetButton",
    "WidgetClick",
]
