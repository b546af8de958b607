"""Throwaway databases on DATABASE_URL's server, or on the embedded PostgreSQL in `.tradegraph/`."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import make_conninfo

from tradegraph.bootstrap import prepare_database
from tradegraph.database import start_embedded
from tradegraph.settings import PROJECT_ROOT


def server_url() -> str:
    """The server throwaway databases are created on."""
    return os.environ.get("DATABASE_URL") or start_embedded(PROJECT_ROOT / ".tradegraph")


@contextmanager
def fresh_database(prefix: str = "tradegraph_test") -> Iterator[str]:
    """A new, migrated database with the market data loaded; dropped (connections and all) afterwards."""
    admin = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(admin, dbname=name)
    try:
        asyncio.run(prepare_database(url))
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
