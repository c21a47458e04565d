"""the figure columns of csatPercent and the distributions (`models.metrics`): csat_points,
frt_* and duration_* (ten time buckets each) and rating_1..rating_5, in the aggregate tables and
the record of each conversation, filled from what they count already

Revision ID: 0007_distributions
Revises: 0006_messages_per_conversation
Create Date: 2026-12-02 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from models.migrations.figures import add_and_fill, drop

revision: str = "0007_distributions"
down_revision: str | None = "0006_messages_per_conversation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOUNDS = (60, 300, 900, 1800, 3600, 14400, 28800, 86400, 259200)


def _time_buckets(prefix: str, value: str) -> dict[str, str]:
    """A value is in the first bucket whose bound is >= it; a null value is in none."""
    found, lower = {}, None
    for bound in BOUNDS:
        above = f"{value} > {lower} AND " if lower is not None else ""
        found[f"{prefix}_le_{bound}"] = f"CASE WHEN {above}{value} <= {bound} THEN 1 ELSE 0 END"
        lower = bound
    found[f"{prefix}_gt_{lower}"] = f"CASE WHEN {value} > {lower} THEN 1 ELSE 0 END"
    return found


# Each new column: its value for one conversation `c`, as ingestion computes it.
COLUMNS = {
    "csat_points": "CASE WHEN c.rating >= 4 THEN 100 ELSE 0 END",
    **_time_buckets("frt", "(c.first_response_at - c.first_inbound_at)"),
    **_time_buckets("duration", "(c.closed_at - c.started_at)"),
    **{f"rating_{r}": f"CASE WHEN c.rating = {r} THEN 1 ELSE 0 END" for r in range(1, 6)},
}


def upgrade() -> None:
    add_and_fill({name: (sa.Integer(), value) for name, value in COLUMNS.items()})


def downgrade() -> None:
    drop(list(COLUMNS))
