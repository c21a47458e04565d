"""office hours and service levels per conversation (issue 18): the service-level targets per
account (`service_level`), the business-time figures and service-level outcomes of each
conversation (`ingest.service_levels`), the indexes of the conversations still in time, and the
figure columns of the new metrics in the aggregate tables and the record of each conversation

The conversations' new columns start blank, as ingestion keeps them for an account without
office hours and targets (no account has targets before this revision). An account given office
hours at 0009 keeps calendar-time business figures until `wareports account set-office-hours`
runs again for it, which recomputes them.

Revision ID: 0010_service_levels
Revises: 0009_office_hours
Create Date: 2026-12-03 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.migrations.figures import add_and_fill, drop

revision: str = "0010_service_levels"
down_revision: str | None = "0009_office_hours"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANTS = (
    "first_response_business_seconds",
    "duration_business_seconds",
    "first_response_due_at",
    "resolution_due_at",
)
OUTCOMES = ("sla_first_response_met", "sla_resolution_met")
TARGETS = ("first_response", "resolution")


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


# Each new figure column: its type and its value for one conversation `c`, as ingestion
# computes it (`models.metrics`).
FIGURES: dict[str, tuple[sa.types.TypeEngine[int], str]] = {
    "first_response_business_sum": (
        sa.BigInteger(),
        "COALESCE(c.first_response_business_seconds, c.first_response_at - c.first_inbound_at, 0)",
    ),
    "duration_business_sum": (
        sa.BigInteger(),
        "COALESCE(c.duration_business_seconds, c.closed_at - c.started_at, 0)",
    ),
    "started_outside_office_hours": (sa.Integer(), _flag("c.started_outside_office_hours")),
    "sla_first_response_met": (sa.Integer(), _flag("c.sla_first_response_met")),
    "sla_first_response_breached": (sa.Integer(), _flag("NOT c.sla_first_response_met")),
    "sla_resolution_met": (sa.Integer(), _flag("c.sla_resolution_met")),
    "sla_resolution_breached": (sa.Integer(), _flag("NOT c.sla_resolution_met")),
    "sla_points": (
        sa.Integer(),
        " + ".join(f"100 * {_flag(f'c.{outcome}')}" for outcome in OUTCOMES),
    ),
    "sla_targets": (
        sa.Integer(),
        " + ".join(_flag(f"c.{outcome} IS NOT NULL") for outcome in OUTCOMES),
    ),
}


def upgrade() -> None:
    op.create_table(
        "service_level",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    # ALTER TABLE in place (a batch would copy the table on SQLite, which the messages'
    # foreign keys forbid).
    for name in INSTANTS:
        op.add_column("conversation", sa.Column(name, sa.BigInteger(), nullable=True))
    op.add_column(
        "conversation",
        sa.Column(
            "started_outside_office_hours", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    for name in OUTCOMES:
        op.add_column("conversation", sa.Column(name, sa.Boolean(), nullable=True))
    for target in TARGETS:
        still_in_time = sa.text(f"sla_{target}_met IS NULL AND {target}_due_at IS NOT NULL")
        op.create_index(
            f"ix_conversation_{target}_due",
            "conversation",
            ["account_id", f"{target}_due_at"],
            sqlite_where=still_in_time,
            postgresql_where=still_in_time,
        )
    add_and_fill(FIGURES)


def downgrade() -> None:
    drop(list(FIGURES))
    for target in TARGETS:
        op.drop_index(f"ix_conversation_{target}_due", table_name="conversation")
    # In place, as they were added (SQLite 3.35+).
    for name in (*INSTANTS, "started_outside_office_hours", *OUTCOMES):
        op.execute(f"ALTER TABLE conversation DROP COLUMN {name}")
    op.drop_table("service_level")
