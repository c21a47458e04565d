"""the figure column of avgMessagesPerConversation (`models.metrics`): message_count_sum in the
aggregate tables and the record of each conversation, filled from what they count already

Revision ID: 0006_messages_per_conversation
Revises: 0005_growing_ids
Create Date: 2026-12-02 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_messages_per_conversation"
down_revision: str | None = "0005_growing_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMN = "message_count_sum"
RECORD = "aggregated_conversation"
TAGGED = " JOIN aggregated_conversation_tag t ON t.conversation_id = r.conversation_id"
# Each aggregate table: its cells' key columns, the tags joined to the record `r` and what the
# keys are there: the cells `ingest.aggregates` adds each conversation to.
CELLS = {
    "daily_figures": ("", {"day": "r.day", "source": "r.source", "assignee_id": "r.assignee_id"}),
    "source_daily_figures": ("", {"day": "r.day", "source": "r.source"}),
    "tag_daily_figures": (TAGGED, {"day": "r.day", "source": "r.source", "tag_id": "t.tag_id"}),
    "tag_agent_daily_figures": (
        TAGGED,
        {
            "day": "r.day",
            "source": "r.source",
            "tag_id": "t.tag_id",
            "assignee_id": "r.assignee_id",
        },
    ),
    "tag_pair_daily_figures": (
        TAGGED + " JOIN aggregated_conversation_tag w ON w.conversation_id = r.conversation_id",
        {"day": "r.day", "source": "r.source", "tag_id": "t.tag_id", "with_tag_id": "w.tag_id"},
    ),
}


def upgrade() -> None:
    for table in (RECORD, *CELLS):
        op.add_column(table, sa.Column(COLUMN, sa.BigInteger(), nullable=False, server_default="0"))
    # The record holds each conversation's figures as of its last change, when its row was
    # written too: its message count is the conversation's.
    op.execute(
        f"UPDATE {RECORD} SET {COLUMN} = COALESCE((SELECT c.message_count FROM conversation c"
        f" WHERE c.id = {RECORD}.conversation_id), 0)"
    )
    # Each cell: the sum over the conversations the record counts in it, in one grouped pass
    # (UPDATE ... FROM: PostgreSQL, and SQLite since 3.33). Cells no conversation started in
    # (messages only) keep 0.
    for table, (joins, keys) in CELLS.items():
        grouped = ", ".join(f"{expression} AS {key}" for key, expression in keys.items())
        same = " AND ".join(f"s.{key} = {table}.{key}" for key in keys)
        op.execute(
            f"UPDATE {table} SET {COLUMN} = s.total FROM (SELECT r.account_id AS account_id,"
            f" {grouped}, SUM(r.{COLUMN}) AS total FROM {RECORD} r{joins}"
            f" GROUP BY r.account_id, {', '.join(keys.values())}) AS s"
            f" WHERE s.account_id = {table}.account_id AND {same}"
        )


def downgrade() -> None:
    for table in (RECORD, *CELLS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(COLUMN)
