"""report aggregates: daily figures per local day, source, assignee and tag, kept at ingestion

Accounts that already hold data get no `aggregate_state` row: their reports read the raw rows
until `wareports rebuild-aggregates` builds their aggregates.

Revision ID: 0002_aggregates
Revises: 0001
Create Date: 2026-11-25 04:34:02.442066
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_aggregates"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_daily_messages",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("sent_messages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "day", "agent_id"),
    )
    op.create_table(
        "aggregate_state",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rebuilt_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "aggregated_conversation",
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.Column("inbound_conversations", sa.Integer(), nullable=False),
        sa.Column("closed_conversations", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.BigInteger(), nullable=False),
        sa.Column("first_response_sum", sa.BigInteger(), nullable=False),
        sa.Column("first_response_count", sa.Integer(), nullable=False),
        sa.Column("rating_sum", sa.Integer(), nullable=False),
        sa.Column("rated_conversations", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("last_message_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("aggregated_conversation", schema=None) as batch_op:
        batch_op.create_index("ix_aggregated_conversation_account", ["account_id"], unique=False)

    op.create_table(
        "aggregated_conversation_tag",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "tag_id"),
    )
    with op.batch_alter_table("aggregated_conversation_tag", schema=None) as batch_op:
        batch_op.create_index(
            "ix_aggregated_conversation_tag_account", ["account_id"], unique=False
        )

    op.create_table(
        "daily_figures",
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
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "day", "source", "assignee_id"),
    )
    op.create_table(
        "tag_agent_daily_figures",
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
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "assignee_id", "day", "tag_id", "source"),
    )
    op.create_table(
        "tag_daily_figures",
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
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "day", "tag_id", "source"),
    )


def downgrade() -> None:
    op.drop_table("tag_daily_figures")
    op.drop_table("tag_agent_daily_figures")
    op.drop_table("daily_figures")
    with op.batch_alter_table("aggregated_conversation_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_aggregated_conversation_tag_account")

    op.drop_table("aggregated_conversation_tag")
    with op.batch_alter_table("aggregated_conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_aggregated_conversation_account")

    op.drop_table("aggregated_conversation")
    op.drop_table("aggregate_state")
    op.drop_table("agent_daily_messages")
