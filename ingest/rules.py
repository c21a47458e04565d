"""The conversation rules, in memory: a conversation's row (as a dict of its columns) started by
a message and brought up to date by each later one.

The group-commit fold applies them to the conversations it reads and starts (`ingest.bulk`);
the demo generator (`ingest.demo`) and the tests' factories (`tests/factories.py`) build their
conversations with them too, so the figures they write are the figures ingestion would. The
general path (`ingest.conversations`: messages out of order, merges) recomputes the same figures
in SQL from the stored messages; a property test holds both to the same rows
(`tests/ingest/test_group_commit.py`).
"""

from collections.abc import Sequence
from typing import Any

from ingest.conversations import DIRECTION_OF_SENDER, SOURCE_OF_SENDER, Clock, NewMessage
from models.enums import Status


def start(clock: Clock, message: NewMessage, order: int) -> dict[str, Any]:
    inbound = message.sender == "contact"
    channel = message.channel_id if message.channel_id is not None else clock.default_channel_id
    conversation: dict[str, Any] = {
        "id": None,
        "contact_id": message.contact_id,
        "channel_id": channel,
        "assignee_id": message.agent_id,
        "source": SOURCE_OF_SENDER[message.sender],
        "source_explicit": False,
        "direction": DIRECTION_OF_SENDER[message.sender],
        "status": Status.OPEN,
        "started_at": message.sent_at,
        "first_inbound_at": message.sent_at if inbound else None,
        "first_response_at": None,
        "last_message_at": message.sent_at,
        "closed_at": None,
        "closed_by_id": None,
        "auto_closed": False,
        "message_count": 1,
        "inbound_count": 1 if inbound else 0,
        "outbound_count": 0 if inbound else 1,
        "order": order,  # among the conversations this run starts
    }
    settle(clock, conversation, message.sender)
    return conversation


def append(clock: Clock, conversation: dict[str, Any], message: NewMessage) -> None:
    """The figures after a message later than all the conversation holds: the first sender
    (direction, source) does not change; the first reply is this one when it is an agent's, the
    contact has written and nobody answered yet; the first agent who writes takes an unassigned
    conversation."""
    conversation["message_count"] += 1
    conversation["last_message_at"] = message.sent_at
    if message.sender == "contact":
        conversation["inbound_count"] += 1
        if conversation["first_inbound_at"] is None:
            conversation["first_inbound_at"] = message.sent_at
            conversation["first_response_at"] = None  # no reply can follow the latest message
    else:
        conversation["outbound_count"] += 1
        waiting = conversation["first_inbound_at"] is not None
        if message.sender == "agent" and waiting and conversation["first_response_at"] is None:
            conversation["first_response_at"] = message.sent_at
    if conversation["channel_id"] is None and message.channel_id is not None:
        conversation["channel_id"] = message.channel_id
    if conversation["assignee_id"] is None and message.agent_id is not None:
        conversation["assignee_id"] = message.agent_id
    settle(clock, conversation, message.sender)


def settle(clock: Clock, conversation: dict[str, Any], last_sender: str) -> None:
    """The auto-close and status rules (`conversations._apply_auto_close`), for a conversation
    nobody closed, after a message of `last_sender`: closed `delay` after its last message once
    that is past, else OPEN when the contact spoke last and PENDING when the business did."""
    due = conversation["last_message_at"] + clock.delay
    if due <= clock.now:
        conversation.update(
            closed_at=due, auto_closed=True, closed_by_id=None, status=Status.CLOSED
        )
    else:
        status = Status.OPEN if last_sender == "contact" else Status.PENDING
        conversation.update(closed_at=None, auto_closed=False, status=status)


def never_closing(account_id: int, channel_id: int | None) -> Clock:
    """A clock under which no conversation closes by itself: for builders that close their
    conversations themselves (the demo generator, the tests' factories)."""
    return Clock(account_id=account_id, delay=0, now=-(2**62), default_channel_id=channel_id)


def built(clock: Clock, messages: Sequence[NewMessage]) -> dict[str, Any]:
    """The row of a conversation that holds `messages` (in the order they were sent), as the
    rules make it message after message."""
    conversation = start(clock, messages[0], order=0)
    for message in messages[1:]:
        append(clock, conversation, message)
    del conversation["id"], conversation["order"]
    return conversation
