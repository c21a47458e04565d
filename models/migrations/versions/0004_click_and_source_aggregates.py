"""click and source aggregates: website button clicks and attributed conversations per local day
and value; the daily figures per day and source alone (no assignee)

Built aggregates have neither yet: their `aggregate_state` rows are removed, so the
reports read raw rows until `wareports rebuild-aggregates` builds them again.

Revision ID: 0004_clicks
Revises: 0003_covering
Create Date: 2026-12-01 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004_clicks"
down_revision: str | None = "0003_covering"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "click_daily_figures",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "dimension", "day", "key_hash"),
    )
    op.create_table(
        "source_daily_figures",
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
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "day", "source"),
    )
    op.execute("DELETE FROM aggregate_state")


def downgrade() -> None:
    op.drop_table("source_daily_figures")
    op.drop_table("click_daily_figures")
