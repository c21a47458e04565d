"""the figure columns of the delivery funnel (`models.metrics`: deliveredMessages, readMessages,
failedMessages) in the aggregate tables, filled from the messages they count; and the index
that finds an account's failed messages by when they were sent (summaryReport.failureReasons)

Revision ID: 0008_delivery_funnel
Revises: 0007_distributions
Create Date: 2026-12-02 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.migrations.figures import CELLS, drop, fill_message_figures

revision: str = "0008_delivery_funnel"
down_revision: str | None = "0007_distributions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _holding(*statuses: str) -> str:
    listed = ", ".join(f"'{status}'" for status in statuses)
    return f"CASE WHEN m.direction = 'OUTBOUND' AND m.status IN ({listed}) THEN 1 ELSE 0 END"


# Each new column: its value for one message `m`, as ingestion counts it.
COLUMNS = {
    "delivered_messages": _holding("delivered", "read", "played"),
    "read_messages": _holding("read", "played"),
    "failed_messages": _holding("failed"),
}


def upgrade() -> None:
    for table in CELLS:
        with op.batch_alter_table(table) as batch:
            for name in COLUMNS:
                batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    fill_message_figures(COLUMNS)
    op.create_index("ix_message_status", "message", ["account_id", "status", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_message_status", table_name="message")
    drop(list(COLUMNS), record=False)
