"""Adding figure columns to the aggregate tables and the record of each conversation, filled
from what they count already (migrations 0006 and 0007).

Frozen with those revisions: the aggregate tables and their cells as they were then, not as
`models.cells` may declare them later (a migration must run the same forever).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.types import TypeEngine

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


def drop(names: list[str]) -> None:
    for table in (RECORD, *CELLS):
        with op.batch_alter_table(table) as batch:
            for name in names:
                batch.drop_column(name)
