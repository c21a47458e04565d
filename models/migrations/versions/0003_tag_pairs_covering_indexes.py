"""tag pairs and covering indexes: tag_pair_daily_figures (tag reports filtered by one tag),
an index covering the raw distinct-contacts counts, `direction` in the messages' time index

Aggregates built before this revision have no tag pairs: their `aggregate_state` rows are
removed, so the reports read raw rows until `wareports rebuild-aggregates` builds them again.

Revision ID: 0003_covering
Revises: 0002_aggregates
Create Date: 2026-11-25 05:48:02.728005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_covering"
down_revision: str | None = "0002_aggregates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tag_pair_daily_figures",
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("inbound_messages", sa.Integer(), nullable=False),
        sa.Column("outbound_messages", sa.Integer(), nullable=False),
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.Column("inbound_conversations", sa.Integer(), nullable=False),
        sa.Column("closed_conversations", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.BigInteger(), nullable=False),
        sa.Column("first_response_sum", sa.BigInteger(), nullable=False),
        sa.Column("first_response_count", sa.Integer(), nullable=False),
        sa.Column("rating_sum", sa.Integer(), nullable=False),
        sa.Column("rated_conversations", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("with_tag_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "with_tag_id", "day", "tag_id", "source"),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_contacts",
            ["account_id", "started_at", "contact_id", "source", "assignee_id"],
            unique=False,
        )

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_sent"))
        batch_op.create_index(
            "ix_message_sent",
            ["account_id", "sent_at", "conversation_id", "direction"],
            unique=False,
        )
    op.execute("DELETE FROM aggregate_state")


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_sent")
        batch_op.create_index(
            batch_op.f("ix_message_sent"),
            ["account_id", "sent_at", "conversation_id"],
            unique=False,
        )

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_contacts")

    op.drop_table("tag_pair_daily_figures")
