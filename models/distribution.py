"""How the tables spread over a distributed PostgreSQL (Citus), decided once, from the metadata.

Every table that holds an account's rows is *distributed* by `account_id`, all of them
colocated: one account's rows of every table live on one node, so a report or an ingestion
transaction (which always names its account) runs on that node alone. A few small tables are
*reference* tables, copied to every node: they are read before the account is known (a
webhook names a phone number id, a click a button key, a request a token) and every
distributed table may point to them. Alembic's bookkeeping stays *local* to the coordinator.

Citus requires of a distributed table that its primary key, each unique constraint and each
foreign key to another distributed table include the distribution column; `violations` lists
what breaks that (or leads an index with another column, which costs every statement that
names its account a wider scan), and `citus_plan` prints the calls that distribute the schema.
"""

from dataclasses import dataclass

from sqlalchemy import ForeignKeyConstraint, MetaData, Table

DISTRIBUTION_COLUMN = "account_id"

# Read before the account is known, small, pointed to by distributed tables.
REFERENCE_TABLES: dict[str, str] = {
    "account": "the tenants themselves: every distributed table points to its row",
    "channel": "a webhook names its phone number id, not its account",
    "api_token": "a request names its token, not its account",
    "widget_button": "a click on /w/{key} names its button, not its account",
}
LOCAL_TABLES: dict[str, str] = {"alembic_version": "the coordinator's migration bookkeeping"}
# The table the others are colocated with (created first).
COLOCATION_ANCHOR = "contact"


@dataclass(frozen=True)
class Placement:
    table: str
    kind: str  # distributed | reference | local
    why: str


def placements(metadata: MetaData) -> list[Placement]:
    """Every table of `metadata`, with where it goes and why; distributed ones by the order
    Citus needs (the anchor first, then in dependency order)."""
    found: list[Placement] = []
    for table in metadata.sorted_tables:
        if table.name in REFERENCE_TABLES:
            found.append(Placement(table.name, "reference", REFERENCE_TABLES[table.name]))
        elif table.name in LOCAL_TABLES:
            found.append(Placement(table.name, "local", LOCAL_TABLES[table.name]))
        elif DISTRIBUTION_COLUMN in table.c:
            found.append(Placement(table.name, "distributed", "an account's rows"))
        else:
            found.append(Placement(table.name, "local", "holds no account's rows"))
    reference = [p for p in found if p.kind == "reference"]
    anchor = [p for p in found if p.table == COLOCATION_ANCHOR]
    others = [p for p in found if p.kind == "distributed" and p.table != COLOCATION_ANCHOR]
    return reference + anchor + others + [p for p in found if p.kind == "local"]


def _distributed(metadata: MetaData) -> list[Table]:
    kinds = {p.table: p.kind for p in placements(metadata)}
    return [t for t in metadata.sorted_tables if kinds[t.name] == "distributed"]


def violations(metadata: MetaData) -> list[str]:
    """What keeps the schema from being distributed by account, one line each: a distributed
    table whose primary key, a unique constraint or index, or a foreign key to another
    distributed table lacks `account_id`, or an index not led by it."""
    tables = _distributed(metadata)
    distributed = {t.name for t in tables}
    found: list[str] = []
    for table in tables:
        if DISTRIBUTION_COLUMN not in table.primary_key.columns:
            keys = ", ".join(c.name for c in table.primary_key.columns)
            found.append(f"{table.name}: primary key ({keys}) lacks {DISTRIBUTION_COLUMN}")
        for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
            columns = [c.name for c in getattr(constraint, "columns", [])]
            if (
                type(constraint).__name__ == "UniqueConstraint"
                and DISTRIBUTION_COLUMN not in columns
            ):
                found.append(
                    f"{table.name}: unique ({', '.join(columns)}) lacks {DISTRIBUTION_COLUMN}"
                )
        for key in sorted(table.foreign_key_constraints, key=lambda k: tuple(k.column_keys)):
            target = key.referred_table.name
            if target in distributed and DISTRIBUTION_COLUMN not in key.column_keys:
                found.append(
                    f"{table.name}: foreign key ({', '.join(key.column_keys)}) to {target} "
                    f"lacks {DISTRIBUTION_COLUMN}"
                )
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            first = next(iter(index.columns)).name
            if first != DISTRIBUTION_COLUMN:
                listed = ", ".join(c.name for c in index.columns)
                found.append(
                    f"{table.name}: index {index.name} ({listed}) not led by {DISTRIBUTION_COLUMN}"
                )
    return found


def _foreign_keys(metadata: MetaData) -> list[tuple[Table, ForeignKeyConstraint, str]]:
    """The foreign keys between distributed tables, with their names in PostgreSQL (the
    constraint's own, or the name PostgreSQL gives an unnamed one)."""
    tables = _distributed(metadata)
    distributed = {t.name for t in tables}
    found = []
    for table in tables:
        for key in sorted(table.foreign_key_constraints, key=lambda k: tuple(k.column_keys)):
            if key.referred_table.name in distributed:
                name = key.name or f"{table.name}_{'_'.join(key.column_keys)}_fkey"
                found.append((table, key, str(name)))
    return found


def citus_plan(metadata: MetaData) -> str:
    """The SQL that distributes the schema on a Citus coordinator, from the metadata: in one
    transaction in sequential mode (tables with foreign keys to reference tables), the foreign
    keys between distributed tables dropped, the reference tables, the distributed tables
    colocated with the anchor, then the foreign keys again (now between colocated shards)."""
    keys, placed = _foreign_keys(metadata), placements(metadata)
    lines = [
        "-- wareports on Citus: run on the coordinator after `wareports migrate`, with",
        "-- ingestion stopped (existing rows are copied to the shards).",
        "BEGIN;",
        "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';",
    ]
    lines += [f"ALTER TABLE {table.name} DROP CONSTRAINT {name};" for table, _, name in keys]
    for placement in placed:
        if placement.kind == "reference":
            lines.append(f"SELECT create_reference_table('{placement.table}');  -- {placement.why}")
    for placement in placed:
        if placement.kind == "distributed":
            anchor = placement.table == COLOCATION_ANCHOR
            colocation = "'default'" if anchor else f"'{COLOCATION_ANCHOR}'"
            lines.append(
                f"SELECT create_distributed_table('{placement.table}', '{DISTRIBUTION_COLUMN}', "
                f"colocate_with => {colocation});"
            )
    for table, key, name in keys:
        columns = ", ".join(key.column_keys)
        referred = ", ".join(element.column.name for element in key.elements)
        lines.append(
            f"ALTER TABLE {table.name} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) "
            f"REFERENCES {key.referred_table.name} ({referred});"
        )
    for placement in placed:
        if placement.kind == "local":
            lines.append(f"-- {placement.table}: stays on the coordinator ({placement.why})")
    for table_name, why in LOCAL_TABLES.items():
        lines.append(f"-- {table_name}: stays on the coordinator ({why})")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"
