"""Adding figure columns to the aggregate tables and the record of each conversation, filled
from what they count already (migrations 0006 and 0007).

Frozen with those revisions: the aggregate tables and their cells as they were then, not as
`models.cells` may declare them later (a migration must run the same forever).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.types import TypeEngine

from models.calendar import day_number, zone_periods

RECORD = "aggregated_conversation"
TAGGED = " JOIN aggregated_conversation_tag t ON t.conversation_id = r.conversation_id"
# Each aggregate table: the tags joined to the record `r`, and its cells' key columns with what
# they are there: the cells `ingest.aggregates` adds each conversation to.
CELLS = {
    "daily_figures": ("", {"day": "r.day", "source": "r.source", "assignee_id": "r.assignee_id"}),
    "source_daily_figures": ("", {"day": "r.day", "source": "r.source"}),
    "tag_daily_figures": (TAGGED, {"day": "r.day", "source": "r.source", "tag_id": "t.tag_id"}),
    "tag_agent_daily_figures": (
        TAGGED,
        {
            "day": "r.day",
            "source": "r.source",
            "tag_id": "t.tag_id",
            "assignee_id": "r.assignee_id",
        },
    ),
    "tag_pair_daily_figures": (
        TAGGED + " JOIN aggregated_conversation_tag w ON w.conversation_id = r.conversation_id",
        {"day": "r.day", "source": "r.source", "tag_id": "t.tag_id", "with_tag_id": "w.tag_id"},
    ),
}


def add_and_fill(columns: dict[str, tuple[TypeEngine[int], str]]) -> None:
    """Add each column (name: its type and its value for one conversation `c`, never null) to
    the record and the aggregate tables, and fill them."""
    for table in (RECORD, *CELLS):
        with op.batch_alter_table(table) as batch:
            for name, (sql_type, _) in columns.items():
                batch.add_column(sa.Column(name, sql_type, nullable=False, server_default="0"))
    # The record holds each conversation's figures as of its last change, when its row was
    # written too: one pass over the conversations it records.
    values = ", ".join(f"{name} = {value}" for name, (_, value) in columns.items())
    op.execute(
        f"UPDATE {RECORD} SET {values} FROM conversation c WHERE c.id = {RECORD}.conversation_id"
    )
    # Each cell: the sums over the conversations the record counts in it, in one grouped pass
    # (UPDATE ... FROM: PostgreSQL, and SQLite since 3.33). Cells no conversation started in
    # (messages only) keep 0.
    sums = ", ".join(f"SUM(r.{name}) AS {name}" for name in columns)
    sets = ", ".join(f"{name} = s.{name}" for name in columns)
    for table, (joins, keys) in CELLS.items():
        grouped = ", ".join(f"{expression} AS {key}" for key, expression in keys.items())
        same = " AND ".join(f"s.{key} = {table}.{key}" for key in keys)
        op.execute(
            f"UPDATE {table} SET {sets} FROM (SELECT r.account_id AS account_id,"
            f" {grouped}, {sums} FROM {RECORD} r{joins}"
            f" GROUP BY r.account_id, {', '.join(keys.values())}) AS s"
            f" WHERE s.account_id = {table}.account_id AND {same}"
        )


def drop(names: list[str], record: bool = True) -> None:
    for table in (RECORD, *CELLS) if record else CELLS:
        with op.batch_alter_table(table) as batch:
            for name in names:
                batch.drop_column(name)


def fill_message_figures(columns: dict[str, str]) -> None:
    """Fill message figure columns (name: its value for one message `m`, never null), already
    added to the aggregate tables: per account whose aggregates are built, the messages the
    record counts (ids up to its `last_message_id`), in their conversation's recorded cell on
    the local day each was sent in the aggregates' zone."""
    bind = op.get_bind()
    states = bind.execute(sa.text("SELECT account_id, timezone FROM aggregate_state")).all()
    for account_id, zone in states:
        low, high = bind.execute(
            sa.text("SELECT MIN(sent_at), MAX(sent_at) FROM message WHERE account_id = :a"),
            {"a": account_id},
        ).one()
        if low is None:
            continue
        sent_at = sa.literal_column("m.sent_at", sa.BigInteger())
        day = day_number(sent_at, zone_periods(zone, [(low, high)]))
        day_sql = str(day.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))
        sums = ", ".join(f"SUM({value}) AS {name}" for name, value in columns.items())
        sets = ", ".join(f"{name} = s.{name}" for name in columns)
        for table, (joins, keys) in CELLS.items():
            expressions = {**keys, "day": day_sql}
            grouped = ", ".join(f"{expression} AS {key}" for key, expression in expressions.items())
            same = " AND ".join(f"s.{key} = {table}.{key}" for key in keys)
            op.execute(
                sa.text(
                    f"UPDATE {table} SET {sets} FROM (SELECT {grouped}, {sums}"
                    " FROM message m JOIN aggregated_conversation r"
                    " ON r.conversation_id = m.conversation_id AND m.id <= r.last_message_id"
                    f"{joins} WHERE m.account_id = :a AND r.account_id = :a"
                    f" GROUP BY {', '.join(expressions.values())}) AS s"
                    f" WHERE {table}.account_id = :a AND {same}"
                ).bindparams(a=account_id)
            )
