"""The values the tables store for a conversation's source and status and a message's
direction. String enums: they compare equal to, and are stored as, their values."""

from enum import StrEnum


class Source(StrEnum):
    """Who started a conversation."""

    FLOW = "FLOW"  # an automation
    INBOUND = "INBOUND"  # the contact
    INBOX = "INBOX"  # an agent, from the inbox


class Status(StrEnum):
    """Where a conversation stands."""

    OPEN = "OPEN"  # the contact spoke last
    PENDING = "PENDING"  # the business spoke last
    CLOSED = "CLOSED"


class Direction(StrEnum):
    """Who sent a message (and who wrote first in a conversation)."""

    INBOUND = "INBOUND"  # the contact
    OUTBOUND = "OUTBOUND"  # the business: agents and automations
