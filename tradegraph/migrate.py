"""Apply `migrations/*.sql` in order, once each, under an advisory lock so concurrent starts are safe."""

import asyncio
import logging
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.postgres.aio import AsyncPostgresStore
from procrastinate.schema import SchemaManager
from psycopg.rows import dict_row

from tradegraph.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
ADVISORY_LOCK_KEY = 7_340_021_001
"""Arbitrary constant shared by every tradegraph process that migrates."""

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version FROM schema_migrations"
INSERT_APPLIED = "INSERT INTO schema_migrations (version) VALUES (%s)"


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The SQL files in apply order (their names start with a zero-padded number)."""
    return sorted(directory.glob("*.sql"))


HAS_QUEUE_SCHEMA = "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"


async def _apply_queue_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Install procrastinate's job-queue schema once (it ships as one SQL file)."""
    row = await (await conn.execute(HAS_QUEUE_SCHEMA)).fetchone()
    if row and not row["present"]:
        await conn.execute(SchemaManager.get_schema())
        log.info("installed the procrastinate job-queue schema")


TRY_LOCK = "SELECT pg_try_advisory_lock(%s) AS taken"
LOCK_RETRY_S = 0.1


async def _take_lock(conn: psycopg.AsyncConnection[Any]) -> None:
    """Wait for the migration lock without sitting in a transaction meanwhile.

    A blocking `pg_advisory_lock` would keep a transaction open while it waits, and the
    checkpointer's `CREATE INDEX CONCURRENTLY` (run by the lock holder) waits for every open
    transaction to end: two processes starting at once would deadlock. Polling avoids that.
    """
    while True:
        row = await (await conn.execute(TRY_LOCK, (ADVISORY_LOCK_KEY,))).fetchone()
        if row and row["taken"]:
            return
        await asyncio.sleep(LOCK_RETRY_S)


async def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations, then the checkpointer's and the store's `setup()`; return those applied."""
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, prepare_threshold=None, row_factory=dict_row
    ) as conn:
        await _take_lock(conn)
        try:
            await conn.execute(CREATE_MIGRATIONS_TABLE)
            cur = await conn.execute(SELECT_APPLIED)
            done = {row["version"] for row in await cur.fetchall()}
            for path in migration_files(directory):
                if path.stem in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(INSERT_APPLIED, (path.stem,))
                log.info("applied migration %s", path.stem)
                applied_now.append(path.stem)
            await AsyncPostgresSaver(conn).setup()
            await AsyncPostgresStore(conn).setup()
            await _apply_queue_schema(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now
