"""the heatmap's aggregates (issue 17): the figures per local hour (`hour`: local hours since
1970-01-01 00:00) and source, by assignee, by conversation tag; the record of each conversation
gains the local hour it started (its hourly cell)

Filled for every account whose aggregates are built, in their zone, from what they count
already: each conversation's recorded figures in the cell of the local hour it started, each
message the record counts in the cell of the local hour it was sent (as `ingest.aggregates`
adds them).

Revision ID: 0015_hourly
Revises: 0014_tenant_keys
Create Date: 2026-12-03 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.calendar import hour_number, zone_periods

revision: str = "0015_hourly"
down_revision: str | None = "0014_tenant_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The figure columns of the aggregate tables at this revision (`models.metrics`).
BOUNDS = (60, 300, 900, 1800, 3600, 14400, 28800, 86400, 259200)  # the distributions' bins
INTEGERS = (
    *("messages", "inbound_messages", "outbound_messages"),
    *("delivered_messages", "read_messages", "failed_messages"),
    *("conversations", "inbound_conversations", "closed_conversations", "first_response_count"),
    *("rating_sum", "rated_conversations", "csat_points"),
    *(f"frt_le_{bound}" for bound in BOUNDS),
    "frt_gt_259200",
    *(f"duration_le_{bound}" for bound in BOUNDS),
    "duration_gt_259200",
    *(f"rating_{rating}" for rating in range(1, 6)),
    "started_outside_office_hours",
    *("sla_first_response_met", "sla_first_response_breached"),
    *("sla_resolution_met", "sla_resolution_breached", "sla_points", "sla_targets"),
    "window_missed_conversations",
)
BIG = (
    "duration_sum",
    "first_response_sum",
    "message_count_sum",
    "first_response_business_sum",
    "duration_business_sum",
)
# Each table's cell keys besides account_id, in key order.
TABLES = {
    "hourly_figures": ("hour", "source"),
    "agent_hourly_figures": ("assignee_id", "hour", "source"),
    "tag_hourly_figures": ("tag_id", "hour", "source"),
}


def _holding(*statuses: str) -> str:
    listed = ", ".join(f"'{status}'" for status in statuses)
    return f"CASE WHEN m.direction = 'OUTBOUND' AND m.status IN ({listed}) THEN 1 ELSE 0 END"


# The message figures: each one's value for one message `m`, as ingestion counts it; every other
# figure is a conversation's, recorded in `aggregated_conversation`.
MESSAGE_FIGURES = {
    "messages": "1",
    "inbound_messages": "CASE WHEN m.direction = 'INBOUND' THEN 1 ELSE 0 END",
    "outbound_messages": "CASE WHEN m.direction = 'OUTBOUND' THEN 1 ELSE 0 END",
    "delivered_messages": _holding("delivered", "read", "played"),
    "read_messages": _holding("read", "played"),
    "failed_messages": _holding("failed"),
}
TAGGED = (
    " JOIN aggregated_conversation_tag t"
    " ON t.account_id = r.account_id AND t.conversation_id = r.conversation_id"
)


def _key(name: str) -> sa.Column[object]:
    if name == "source":
        return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(), nullable=False)
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    for table, keys in TABLES.items():
        op.create_table(
            table,
            *(sa.Column(name, sa.Integer(), nullable=False) for name in INTEGERS),
            *(sa.Column(name, sa.BigInteger(), nullable=False) for name in BIG),
            sa.Column("account_id", sa.Integer(), nullable=False),
            *(_key(name) for name in keys),
            sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("account_id", *keys),
        )
    with op.batch_alter_table("aggregated_conversation") as batch:
        batch.add_column(sa.Column("hour", sa.Integer(), nullable=False, server_default="0"))
    bind = op.get_bind()
    states = bind.execute(sa.text("SELECT account_id, timezone FROM aggregate_state")).all()
    for account_id, zone in states:
        _fill(bind, account_id, zone)


def _hour_sql(bind: sa.Connection, column: str, account_id: int, zone: str) -> str | None:
    """SQL: the local hour of `column` (an instant of `table`) in the zone, exact for every
    instant of the account's rows; None when it has none."""
    table, name = column.split(".")
    source = {"c": "conversation", "m": "message"}[table]
    low, high = bind.execute(
        sa.text(f"SELECT MIN({name}), MAX({name}) FROM {source} WHERE account_id = :a"),
        {"a": account_id},
    ).one()
    if low is None:
        return None
    instant = sa.literal_column(column, sa.BigInteger())
    hour = hour_number(instant, zone_periods(zone, [(low, high)]))
    return str(hour.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))


def _fill(bind: sa.Connection, account_id: int, zone: str) -> None:
    started = _hour_sql(bind, "c.started_at", account_id, zone)
    if started is None:
        return
    bind.execute(
        sa.text(
            f"UPDATE aggregated_conversation SET hour = (SELECT {started} FROM conversation c"
            " WHERE c.account_id = aggregated_conversation.account_id"
            " AND c.id = aggregated_conversation.conversation_id)"
            " WHERE account_id = :a"
        ),
        {"a": account_id},
    )
    sent = _hour_sql(bind, "m.sent_at", account_id, zone) or "0"
    figures = (*INTEGERS, *BIG)
    for table, keys in TABLES.items():
        joins = TAGGED if "tag_id" in keys else ""
        columns = {"hour": "r.hour", "source": "r.source", "assignee_id": "r.assignee_id"}
        columns["tag_id"] = "t.tag_id"
        started_keys = ", ".join(f"{columns[key]} AS {key}" for key in keys)
        sent_keys = ", ".join(f"{sent if key == 'hour' else columns[key]} AS {key}" for key in keys)
        recorded = ", ".join(
            f"0 AS {name}" if name in MESSAGE_FIGURES else f"r.{name} AS {name}" for name in figures
        )
        counted = ", ".join(f"{MESSAGE_FIGURES.get(name, '0')} AS {name}" for name in figures)
        sums = ", ".join(f"SUM(u.{name})" for name in figures)
        listed = ", ".join(keys)
        bind.execute(
            sa.text(
                f"INSERT INTO {table} (account_id, {listed}, {', '.join(figures)})"
                f" SELECT :a, {', '.join(f'u.{key}' for key in keys)}, {sums} FROM ("
                f"SELECT {started_keys}, {recorded} FROM aggregated_conversation r{joins}"
                " WHERE r.account_id = :a"
                f" UNION ALL SELECT {sent_keys}, {counted} FROM message m"
                " JOIN aggregated_conversation r ON r.account_id = m.account_id"
                " AND r.conversation_id = m.conversation_id AND m.id <= r.last_message_id"
                f"{joins} WHERE m.account_id = :a) AS u"
                f" GROUP BY {', '.join(f'u.{key}' for key in keys)}"
            ),
            {"a": account_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("aggregated_conversation") as batch:
        batch.drop_column("hour")
    for table in reversed(TABLES):
        op.drop_table(table)
