"""office hours per account (issue 18): the weekly schedule and the closed dates

Revision ID: 0009_office_hours
Revises: 0008_delivery_funnel
Create Date: 2026-12-03 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_office_hours"
down_revision: str | None = "0008_delivery_funnel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "office_hours",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("closed_dates", sa.String(), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("office_hours")
