"""the figure column of avgMessagesPerConversation (`models.metrics`): message_count_sum in the
aggregate tables and the record of each conversation, filled from what they count already

Revision ID: 0006_messages_per_conversation
Revises: 0005_growing_ids
Create Date: 2026-12-02 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from models.migrations.figures import add_and_fill, drop

revision: str = "0006_messages_per_conversation"
down_revision: str | None = "0005_growing_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"message_count_sum": (sa.BigInteger(), "c.message_count")}


def upgrade() -> None:
    add_and_fill(COLUMNS)


def downgrade() -> None:
    drop(list(COLUMNS))
