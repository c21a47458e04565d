"""the 24-hour customer-service window (issue 19): whether a conversation left a contact's
message 24 hours without a reply (`ingest.window`), computed for the stored conversations as of
the migration, and the figure column of windowMissedConversations, filled from it

Revision ID: 0012_window
Revises: 0011_message_changes
Create Date: 2026-12-03 10:00:00.000000
"""

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.migrations.figures import add_and_fill, drop

revision: str = "0012_window"
down_revision: str | None = "0011_message_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "window_missed_conversations": (sa.Integer(), "CASE WHEN c.window_missed THEN 1 ELSE 0 END")
}
MISSED = (
    "UPDATE conversation SET window_missed = TRUE WHERE EXISTS (SELECT 1 FROM message m"
    " WHERE m.conversation_id = conversation.id AND m.direction = 'INBOUND'"
    " AND m.sent_at + 86400 < :now AND NOT EXISTS (SELECT 1 FROM message o"
    " WHERE o.conversation_id = m.conversation_id AND o.direction = 'OUTBOUND'"
    " AND o.sent_at >= m.sent_at AND o.sent_at <= m.sent_at + 86400))"
)


def upgrade() -> None:
    op.add_column(
        "conversation",
        sa.Column("window_missed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(sa.text(MISSED).bindparams(now=int(time.time())))
    add_and_fill(COLUMNS)


def downgrade() -> None:
    drop(list(COLUMNS))
    op.execute("ALTER TABLE conversation DROP COLUMN window_missed")
