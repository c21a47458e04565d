"""the rated conversations' index (issue 17): a drill-down into a rating (`ratings`, with or
without `statuses`) lists a page of them and counts them without reading every conversation in
range. Partial (`rating IS NOT NULL`): ingesting an unrated conversation never writes it.

Revision ID: 0017_rated_index
Revises: 0016_contact_sets
Create Date: 2026-12-04 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_rated_index"
down_revision: str | None = "0016_contact_sets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    rated = sa.text("rating IS NOT NULL")
    op.create_index(
        "ix_conversation_rated",
        "conversation",
        ["account_id", "rating", "started_at", "status"],
        sqlite_where=rated,
        postgresql_where=rated,
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_rated", table_name="conversation")
