"""Migrations: ordered, recorded once, and safe when several processes start at once."""

import asyncio

import psycopg

from tradegraph.bootstrap import prepare_database
from tradegraph.migrate import migrate, migration_files


async def test_concurrent_migrations_apply_each_file_once(own_database_url):
    with psycopg.connect(own_database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    applied = await asyncio.gather(*(migrate(own_database_url) for _ in range(4)))
    versions = [path.stem for path in migration_files()]
    assert sorted(sum(applied, [])) == versions, "every file applied by exactly one of the four"
    with psycopg.connect(own_database_url) as conn:
        recorded = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert recorded == versions
    assert {"models", "orders", "fills", "runs", "checkpoints", "procrastinate_jobs"} <= tables
    assert await migrate(own_database_url) == []


async def test_concurrent_start_ups_load_the_prices_once(own_database_url):
    with psycopg.connect(own_database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    await asyncio.gather(*(prepare_database(own_database_url) for _ in range(3)))
    with psycopg.connect(own_database_url) as conn:
        per_symbol = dict(conn.execute("SELECT symbol, count(*) FROM daily_bars GROUP BY symbol").fetchall())
    assert per_symbol == {"AAPL": 3270, "IBM": 3270, "MSFT": 3270, "GOOG": 2148, "FB": 196}
