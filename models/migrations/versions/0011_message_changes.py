"""edits and revokes of messages (issue 19): when a message was edited or deleted for everyone,
how many of each a conversation holds, and the edits and revokes waiting for their message; the
agent of each number's messages echoed from the WhatsApp Business app

Revision ID: 0011_message_changes
Revises: 0010_service_levels
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_message_changes"
down_revision: str | None = "0010_service_levels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROWING_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # In place (a batch would copy the tables on SQLite, which their foreign keys forbid).
    for name in ("edited_at", "deleted_at"):
        op.add_column("message", sa.Column(name, sa.BigInteger(), nullable=True))
    for name in ("edited_messages", "deleted_messages"):
        op.add_column(
            "conversation", sa.Column(name, sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "pending_change",
        sa.Column("id", GROWING_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("wamid", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_pending_change_wamid", "pending_change", ["account_id", "wamid"])
    op.add_column("channel", sa.Column("business_app_agent", sa.String(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE channel DROP COLUMN business_app_agent")
    op.drop_index("ix_pending_change_wamid", table_name="pending_change")
    op.drop_table("pending_change")
    for name in ("edited_messages", "deleted_messages"):
        op.execute(f"ALTER TABLE conversation DROP COLUMN {name}")
    for name in ("edited_at", "deleted_at"):
        op.execute(f"ALTER TABLE message DROP COLUMN {name}")
