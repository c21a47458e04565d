"""pricing (issue 19): what WhatsApp bills each outbound message as (category, billable, from the
latest status that carried it), the same on the statuses waiting for their message, and each
contact's country, derived from its number for the stored contacts

Revision ID: 0013_pricing
Revises: 0012_window
Create Date: 2026-12-03 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.phones import country_of

revision: str = "0013_pricing"
down_revision: str | None = "0012_window"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 10_000


def upgrade() -> None:
    # In place (a batch would copy the tables on SQLite, which their foreign keys forbid).
    op.add_column("message", sa.Column("pricing_category", sa.String(), nullable=True))
    op.add_column("message", sa.Column("billable", sa.Boolean(), nullable=True))
    op.add_column("message", sa.Column("pricing_at", sa.BigInteger(), nullable=True))
    op.add_column("pending_status", sa.Column("pricing_category", sa.String(), nullable=True))
    op.add_column("pending_status", sa.Column("billable", sa.Boolean(), nullable=True))
    op.add_column("contact", sa.Column("country", sa.String(2), nullable=True))
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.text("SELECT id, phone FROM contact WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            break
        found = [{"id": row.id, "country": country_of(row.phone)} for row in rows]
        known = [row for row in found if row["country"] is not None]
        if known:
            connection.execute(
                sa.text("UPDATE contact SET country = :country WHERE id = :id"), known
            )
        after = rows[-1].id


def downgrade() -> None:
    op.execute("ALTER TABLE contact DROP COLUMN country")
    for name in ("pricing_category", "billable"):
        op.execute(f"ALTER TABLE pending_status DROP COLUMN {name}")
    for name in ("pricing_category", "billable", "pricing_at"):
        op.execute(f"ALTER TABLE message DROP COLUMN {name}")
