"""the tenant in every key (issue 20): each table holding an account's rows is keyed by
(account_id, id) (tag links and the aggregates' records by (account_id, ...)), points to another
such table by (account_id, its id), and every index of it is led by account_id, so that each
statement names its account and a distributed PostgreSQL (Citus) keeps an account on one node

On SQLite `id` stays the row id (`id INTEGER PRIMARY KEY`, unique in the file): a unique index
on (id, account_id) is the key the composite foreign keys point to; the tables that hold such
foreign keys are rebuilt (copied), with the foreign keys off until every key is checked
(`models.migrations.env`).

Revision ID: 0014_tenant_keys
Revises: 0013_pricing
Create Date: 2026-12-03 12:30:00.000000
"""

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision: str = "0014_tenant_keys"
down_revision: str | None = "0013_pricing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class Link(NamedTuple):
    """A foreign key from `table`.`column` to `target` (id), then (account_id, id)."""

    table: str
    column: str
    target: str
    name: str


LINKS = [
    Link("conversation", "contact_id", "contact", "fk_conversation_contact"),
    Link("conversation", "assignee_id", "agent", "fk_conversation_assignee"),
    Link("conversation", "closed_by_id", "agent", "fk_conversation_closed_by"),
    Link("contact_tag", "contact_id", "contact", "fk_contact_tag_contact"),
    Link("contact_tag", "tag_id", "tag", "fk_contact_tag_tag"),
    Link("conversation_tag", "conversation_id", "conversation", "fk_conversation_tag_conversation"),
    Link("conversation_tag", "tag_id", "tag", "fk_conversation_tag_tag"),
    Link("message", "conversation_id", "conversation", "fk_message_conversation"),
    Link("message", "agent_id", "agent", "fk_message_agent"),
    Link("widget_click", "conversation_id", "conversation", "fk_widget_click_conversation"),
]
# Primary keys: (before, after).
KEYS = {
    "agent": (["id"], ["account_id", "id"]),
    "contact": (["id"], ["account_id", "id"]),
    "tag": (["id"], ["account_id", "id"]),
    "conversation": (["id"], ["account_id", "id"]),
    "message": (["id"], ["account_id", "id"]),
    "widget_click": (["id"], ["account_id", "id"]),
    "pending_status": (["id"], ["account_id", "id"]),
    "pending_change": (["id"], ["account_id", "id"]),
    "contact_tag": (["contact_id", "tag_id"], ["account_id", "contact_id", "tag_id"]),
    "conversation_tag": (
        ["conversation_id", "tag_id"],
        ["account_id", "conversation_id", "tag_id"],
    ),
    "aggregated_conversation": (["conversation_id"], ["account_id", "conversation_id"]),
    "aggregated_conversation_tag": (
        ["conversation_id", "tag_id"],
        ["account_id", "conversation_id", "tag_id"],
    ),
}
# Indexes: (table, name before, columns before, name after, columns after); None: no index.
INDEXES = [
    (
        "message",
        "ix_message_conversation",
        ["conversation_id", "sent_at"],
        "ix_message_conversation",
        ["account_id", "conversation_id", "sent_at", "direction"],
    ),
    (
        "conversation",
        "ix_conversation_assignee_id",
        ["assignee_id"],
        "ix_conversation_assignee",
        ["account_id", "assignee_id"],
    ),
    (
        "widget_click",
        "ix_widget_click_conversation_id",
        ["conversation_id"],
        "ix_widget_click_conversation",
        ["account_id", "conversation_id"],
    ),
    # Led by account_id already: the new primary key covers them.
    (
        "aggregated_conversation",
        "ix_aggregated_conversation_account",
        ["account_id"],
        None,
        [],
    ),
    (
        "aggregated_conversation_tag",
        "ix_aggregated_conversation_tag_account",
        ["account_id"],
        None,
        [],
    ),
]
# SQLite: WITHOUT ROWID (keyed by their primary key alone, no row id).
CLUSTERED = {t for t, (before, _) in KEYS.items() if before != ["id"]}
# SQLite: the key the composite foreign keys point to (its row id stays the primary key).
PARENTS = sorted({link.target for link in LINKS})
# SQLite names the foreign keys and primary keys it reflects by these, to drop them.
CONVENTION = {
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite(upgrade=True)
    else:
        _postgresql(upgrade=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite(upgrade=False)
    else:
        _postgresql(upgrade=False)


def _postgresql(*, upgrade: bool) -> None:
    inspector = sa.inspect(op.get_bind())
    for link in LINKS:  # every key between these tables, before their primary keys change
        for key in inspector.get_foreign_keys(link.table):
            if key["referred_table"] == link.target and link.column in key["constrained_columns"]:
                op.drop_constraint(key["name"], link.table, type_="foreignkey")
    for table, (before, after) in KEYS.items():
        name = inspector.get_pk_constraint(table)["name"]
        op.drop_constraint(name, table, type_="primary")
        op.create_primary_key(name, table, after if upgrade else before)
    for link in LINKS:
        if upgrade:
            columns, referred = ["account_id", link.column], ["account_id", "id"]
            name = link.name
        else:
            columns, referred = [link.column], ["id"]
            name = f"{link.table}_{link.column}_fkey"
        op.create_foreign_key(name, link.table, link.target, columns, referred)
    _swap_indexes(upgrade=upgrade)


def _swap_indexes(*, upgrade: bool) -> None:
    for table, old_name, old_columns, new_name, new_columns in INDEXES:
        if upgrade:
            op.drop_index(old_name, table_name=table)
            if new_name is not None:
                op.create_index(new_name, table, new_columns)
        else:
            if new_name is not None:
                op.drop_index(new_name, table_name=table)
            op.create_index(old_name, table, old_columns)


def _sqlite(*, upgrade: bool) -> None:
    if upgrade:
        for parent in PARENTS:
            # (id, account_id): the same key to SQLite's foreign keys, and never a planner's
            # choice for a statement that names the account.
            op.create_index(f"uq_{parent}_tenant", parent, ["id", "account_id"], unique=True)
    rebuilt = {link.table for link in LINKS} | {t for t, (b, _) in KEYS.items() if b != ["id"]}
    for table in sorted(rebuilt):
        # A table keyed by (account_id, ...) alone is clustered by its key: one seek, not two.
        clustered = {"sqlite_with_rowid": not (upgrade and table in CLUSTERED)}
        with op.batch_alter_table(
            table, naming_convention=CONVENTION, recreate="always", table_kwargs=clustered
        ) as batch:
            for link in (link for link in LINKS if link.table == table):
                if upgrade:
                    unnamed = f"fk_{table}_{link.column}_{link.target}"
                    batch.drop_constraint(unnamed, type_="foreignkey")
                    batch.create_foreign_key(
                        link.name, link.target, ["account_id", link.column], ["account_id", "id"]
                    )
                else:
                    batch.drop_constraint(link.name, type_="foreignkey")
                    unnamed = f"fk_{table}_{link.column}_{link.target}"  # (as reflected)
                    batch.create_foreign_key(unnamed, link.target, [link.column], ["id"])
            before, after = KEYS.get(table, (["id"], ["id"]))
            if before != ["id"]:
                batch.drop_constraint(f"pk_{table}", type_="primary")
                batch.create_primary_key(f"pk_{table}", after if upgrade else before)
            for index in (index for index in INDEXES if index[0] == table):
                _, old_name, old_columns, new_name, new_columns = index
                if upgrade:
                    batch.drop_index(old_name)
                    if new_name is not None:
                        batch.create_index(new_name, new_columns)
                else:
                    if new_name is not None:
                        batch.drop_index(new_name)
                    batch.create_index(old_name, old_columns)
    if not upgrade:
        for parent in PARENTS:
            op.drop_index(f"uq_{parent}_tenant", table_name=parent)
