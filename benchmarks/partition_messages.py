"""The partitioned-messages experiment (issue 20): turn a PostgreSQL database's `message` table into
one range-partitioned by `sent_at` month, or back, so that `wareports bench --reuse` and
benchmarks/ingest_throughput.py --template can be timed on both layouts of the same rows.

    .venv/bin/python benchmarks/partition_messages.py URL [--undo] [--months-ahead 3]

`URL`: a PostgreSQL database made by `wareports bench --database-url URL` (never `test`). The
partitioned table has every column, index and foreign key of `message`, one partition per UTC month
from the first message's to `--months-ahead` after the last one's, and a default partition. What
PostgreSQL cannot keep: a unique constraint on a partitioned table must contain the partition key,
so `(account_id, wamid)` becomes `(account_id, wamid, sent_at)` and the primary key `(account_id,
id, sent_at)`: a wamid is unique only per instant (a redelivered webhook, same timestamp, still
collides; the same wamid recorded by an event and a webhook at different instants no longer
would). The plain table is kept as `message_plain` until `--undo` swaps it back (and drops the
partitioned one). Prints the row counts, the copy time and the plan of the statements by
conversation that ingestion runs.
"""

import argparse
import asyncio
import time
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.engine import make_url

INDEXES = {
    "ix_message_sent": "account_id, sent_at, conversation_id, direction",
    "ix_message_conversation": "account_id, conversation_id, sent_at, direction",
    "ix_message_agent": "account_id, agent_id, sent_at",
    "ix_message_status": "account_id, status, sent_at",
}
FOREIGN_KEYS = {
    "fk_message_conversation": (
        "(account_id, conversation_id) REFERENCES conversation(account_id, id)"
    ),
    "fk_message_agent": "(account_id, agent_id) REFERENCES agent(account_id, id)",
    "message_account_id_fkey": "(account_id) REFERENCES account(id)",
}
# What ingestion asks of a conversation's messages (ingest.conversations' figures, in short).
BY_CONVERSATION = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT min(sent_at), max(sent_at), count(*) FILTER (WHERE direction = 'OUTBOUND')
FROM message WHERE account_id = $1 AND conversation_id = $2
"""


def month_start(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def months(first: int, last: int, ahead: int) -> list[tuple[str, int, int]]:
    start = datetime.fromtimestamp(first, UTC)
    end = datetime.fromtimestamp(last, UTC)
    year, month, found = start.year, start.month, []
    stop = (end.year * 12 + end.month - 1) + ahead
    while year * 12 + month - 1 <= stop:
        following = (year + month // 12, month % 12 + 1)
        found.append(
            (f"message_{year:04d}_{month:02d}", month_start(year, month), month_start(*following))
        )
        year, month = following
    return found


async def partition(connection: asyncpg.Connection, ahead: int) -> None:
    first, last, count = await connection.fetchrow(
        "SELECT min(sent_at), max(sent_at), count(*) FROM message"
    )
    began = time.perf_counter()
    async with connection.transaction():
        await connection.execute(
            "CREATE TABLE message_partitioned (LIKE message INCLUDING DEFAULTS)"
            " PARTITION BY RANGE (sent_at)"
        )
        for name, low, high in months(first, last, ahead):
            await connection.execute(
                f"CREATE TABLE {name} PARTITION OF message_partitioned"
                f" FOR VALUES FROM ({low}) TO ({high})"
            )
        await connection.execute(
            "CREATE TABLE message_default PARTITION OF message_partitioned DEFAULT"
        )
        await connection.execute("INSERT INTO message_partitioned SELECT * FROM message")
        copied = time.perf_counter()
        await connection.execute("ALTER TABLE message RENAME TO message_plain")
        for index in INDEXES:
            await connection.execute(f"ALTER INDEX {index} RENAME TO {index}_plain")
        for key in FOREIGN_KEYS:
            await connection.execute(
                f"ALTER TABLE message_plain RENAME CONSTRAINT {key} TO {key}_plain"
            )
        await connection.execute("ALTER INDEX message_pkey RENAME TO message_plain_pkey")
        await connection.execute(
            "ALTER TABLE message_plain RENAME CONSTRAINT message_account_id_wamid_key"
            " TO message_plain_wamid_key"
        )
        await connection.execute("ALTER TABLE message_partitioned RENAME TO message")
        await connection.execute("ALTER TABLE message ADD PRIMARY KEY (account_id, id, sent_at)")
        await connection.execute(
            "ALTER TABLE message ADD CONSTRAINT message_account_id_wamid_key"
            " UNIQUE (account_id, wamid, sent_at)"
        )
        for index, columns in INDEXES.items():
            await connection.execute(f"CREATE INDEX {index} ON message ({columns})")
        for key, definition in FOREIGN_KEYS.items():
            await connection.execute(
                f"ALTER TABLE message ADD CONSTRAINT {key} FOREIGN KEY {definition}"
            )
    await connection.execute("ANALYZE message")
    print(
        f"partitioned {count:,} messages into {len(months(first, last, ahead))} monthly partitions "
        f"+ default: copy {copied - began:.1f} s, "
        f"keys and indexes {time.perf_counter() - copied:.1f} s"
    )


async def undo(connection: asyncpg.Connection) -> None:
    async with connection.transaction():
        await connection.execute("DROP TABLE message")
        await connection.execute("ALTER TABLE message_plain RENAME TO message")
        for index in INDEXES:
            await connection.execute(f"ALTER INDEX {index}_plain RENAME TO {index}")
        for key in FOREIGN_KEYS:
            await connection.execute(f"ALTER TABLE message RENAME CONSTRAINT {key}_plain TO {key}")
        await connection.execute("ALTER INDEX message_plain_pkey RENAME TO message_pkey")
        await connection.execute(
            "ALTER TABLE message RENAME CONSTRAINT message_plain_wamid_key"
            " TO message_account_id_wamid_key"
        )
    print("message is the plain table again")


async def show_plan(connection: asyncpg.Connection) -> None:
    account, conversation = await connection.fetchrow(
        "SELECT account_id, conversation_id FROM message ORDER BY sent_at DESC LIMIT 1"
    )
    for _ in range(3):  # warm
        plan = await connection.fetch(BY_CONVERSATION, account, conversation)
    print("a conversation's messages, as ingestion reads them:")
    for row in plan:
        print(f"    {row[0]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--undo", action="store_true")
    parser.add_argument("--months-ahead", type=int, default=3)
    args = parser.parse_args()
    url = make_url(args.url)
    if url.database in (None, "", "test", "postgres"):
        raise SystemExit(f"refusing to change the database {url.database!r}")
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database,
    )
    try:
        if args.undo:
            await undo(connection)
        else:
            await partition(connection, args.months_ahead)
        await show_plan(connection)
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
