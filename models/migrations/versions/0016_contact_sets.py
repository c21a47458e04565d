"""the contacts of each aggregate cell (issue 15): a serialized Roaring bitmap of the ids of the
contacts with a conversation counted in the cell, for exact distinct contacts from the aggregates

Filled for every account whose aggregates are built, from the aggregates' record of each
conversation (its start day and hour, source, assignee and tags), as `ingest.contact_sets`
fills them.

Revision ID: 0016_contact_sets
Revises: 0015_hourly
Create Date: 2026-12-03 23:00:00.000000
"""

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op
from pyroaring import BitMap64

revision: str = "0016_contact_sets"
down_revision: str | None = "0015_hourly"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table of conversation cells and its keys besides account_id, in key order.
TABLES = {
    "daily_figures": ("day", "source", "assignee_id"),
    "source_daily_figures": ("day", "source"),
    "tag_daily_figures": ("day", "tag_id", "source"),
    "tag_agent_daily_figures": ("assignee_id", "day", "tag_id", "source"),
    "tag_pair_daily_figures": ("with_tag_id", "day", "tag_id", "source"),
    "hourly_figures": ("hour", "source"),
    "agent_hourly_figures": ("assignee_id", "hour", "source"),
    "tag_hourly_figures": ("tag_id", "hour", "source"),
}
PAGE = 50_000


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("contacts", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    for (account_id,) in bind.execute(sa.text("SELECT account_id FROM aggregate_state")).all():
        _fill(bind, account_id)


def _cells(keys: tuple[str, ...], values: dict[str, object], tags: set[int]) -> Iterator[tuple]:
    if "with_tag_id" in keys:
        for with_tag in tags:
            for tag in tags:
                yield tuple({**values, "with_tag_id": with_tag, "tag_id": tag}[k] for k in keys)
    elif "tag_id" in keys:
        for tag in tags:
            yield tuple({**values, "tag_id": tag}[k] for k in keys)
    else:
        yield tuple(values[k] for k in keys)


def _fill(bind: sa.Connection, account_id: int) -> None:
    tags: dict[int, set[int]] = {}
    for conversation_id, tag_id in bind.execute(
        sa.text(
            "SELECT conversation_id, tag_id FROM aggregated_conversation_tag WHERE account_id = :a"
        ),
        {"a": account_id},
    ):
        tags.setdefault(conversation_id, set()).add(tag_id)
    sets: dict[str, dict[tuple, BitMap64]] = {table: {} for table in TABLES}
    after = -1
    while True:
        page = bind.execute(
            sa.text(
                "SELECT r.conversation_id, c.contact_id, r.day, r.hour, r.source, r.assignee_id"
                " FROM aggregated_conversation r JOIN conversation c"
                " ON c.account_id = r.account_id AND c.id = r.conversation_id"
                " WHERE r.account_id = :a AND r.conversation_id > :after"
                " ORDER BY r.conversation_id LIMIT :page"
            ),
            {"a": account_id, "after": after, "page": PAGE},
        ).all()
        if not page:
            break
        after = page[-1][0]
        for conversation_id, contact_id, day, hour, source, assignee_id in page:
            values = {"day": day, "hour": hour, "source": source, "assignee_id": assignee_id}
            mine = tags.get(conversation_id, set())
            for table, keys in TABLES.items():
                for key in _cells(keys, values, mine):
                    sets[table].setdefault(key, BitMap64()).add(contact_id)
    for table, keys in TABLES.items():
        where = " AND ".join(f"{key} = :{key}" for key in keys)
        statement = sa.text(
            f"UPDATE {table} SET contacts = :contacts WHERE account_id = :a AND {where}"
        ).bindparams(sa.bindparam("contacts", type_=sa.LargeBinary()))
        rows = [
            {"a": account_id, **dict(zip(keys, key, strict=True)), "contacts": found.serialize()}
            for key, found in sets[table].items()
        ]
        for start in range(0, len(rows), PAGE):
            bind.execute(statement, rows[start : start + PAGE])


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("contacts")
