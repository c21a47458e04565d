"""growing ids as BIGINT on PostgreSQL: message, widget_click and pending_status ids (and the
columns that hold them: conversation.widget_click_id, aggregated_conversation.last_message_id)
would stop at 2,147,483,647 as SERIAL; SQLite's INTEGER is 64-bit already (nothing to do)

Revision ID: 0005_growing_ids
Revises: 0004_clicks
Create Date: 2026-12-02 06:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_growing_ids"
down_revision: str | None = "0004_clicks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("message", "id"),
    ("widget_click", "id"),
    ("pending_status", "id"),
    ("conversation", "widget_click_id"),
    ("aggregated_conversation", "last_message_id"),
)
SEQUENCES = (("message", "id"), ("widget_click", "id"), ("pending_status", "id"))


def _retype(column_type: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {column_type}")
    for table, column in SEQUENCES:
        sequence = bind.execute(
            sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table, "column": column},
        ).scalar_one()
        op.execute(f"ALTER SEQUENCE {sequence} AS {column_type}")


def upgrade() -> None:
    _retype("bigint")


def downgrade() -> None:
    _retype("integer")  # fails, changing nothing, once an id is past INTEGER
