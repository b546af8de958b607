"""What a thread leaves in the checkpointer's tables, read straight from them."""

from typing import Any

from psycopg_pool import AsyncConnectionPool

CHECKPOINT_TABLES = ("checkpoints", "checkpoint_writes", "checkpoint_blobs")
UNREFERENCED_BLOBS = """
SELECT count(*) AS n FROM checkpoint_blobs b
WHERE b.thread_id = %s AND NOT EXISTS (
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
      AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
)
"""


async def rows_per_table(pool: AsyncConnectionPool, thread_id: str) -> dict[str, int]:
    """How many rows of the thread each checkpoint table holds."""
    counts: dict[str, int] = {}
    async with pool.connection() as conn:
        for table in CHECKPOINT_TABLES:
            row = await (
                await conn.execute(f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (thread_id,))
            ).fetchone()
            counts[table] = row["n"]
    return counts


async def unreferenced_blobs(pool: AsyncConnectionPool, thread_id: str) -> int:
    """Blobs of the thread that no remaining checkpoint uses (garbage)."""
    async with pool.connection() as conn:
        row = await (await conn.execute(UNREFERENCED_BLOBS, (thread_id,))).fetchone()
    return int(row["n"])


async def count(pool: AsyncConnectionPool, sql: str, *params: Any) -> int:
    """The first column of a one-row query."""
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    return int(next(iter(row.values())))
