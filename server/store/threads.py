"""Threads: owned by a user, optionally bound to a trading model, with a protocol status."""

from datetime import datetime
from typing import Any, Literal, NamedTuple, cast
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from typing_extensions import TypedDict

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
PruneStrategy = Literal["keep_latest", "delete"]
"""What pruning (or an expired `ttl`) does to a thread: keep its latest checkpoint, or delete it."""

INSERT_THREAD = """
INSERT INTO threads (thread_id, user_id, model_id, metadata, ttl_minutes, ttl_strategy)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (thread_id) DO NOTHING RETURNING *
"""
SELECT_THREAD = "SELECT * FROM threads WHERE thread_id = %s AND user_id = %s"
SELECT_THREAD_ANY = "SELECT * FROM threads WHERE thread_id = %s"
THREAD_EXISTS = "SELECT user_id FROM threads WHERE thread_id = %s"
PATCH_THREAD = """
UPDATE threads SET metadata = metadata || %(metadata)s, updated_at = now(),
    ttl_minutes = CASE WHEN %(set_ttl)s THEN %(ttl)s ELSE ttl_minutes END,
    ttl_strategy = CASE WHEN %(set_ttl)s THEN %(strategy)s ELSE ttl_strategy END
WHERE thread_id = %(thread_id)s AND user_id = %(user_id)s RETURNING *
"""
DELETE_THREADS = "DELETE FROM threads WHERE thread_id = ANY(%s)"
SELECT_STATUSES = "SELECT thread_id::text AS thread_id, status FROM threads WHERE thread_id::text = ANY(%s)"
SEARCH_THREADS = """
SELECT * FROM threads
WHERE user_id = %(user_id)s
  AND (%(ids)s::uuid[] IS NULL OR thread_id = ANY(%(ids)s::uuid[]))
  AND metadata @> %(metadata)s
  AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s
"""
SORT_COLUMNS = {"thread_id", "status", "created_at", "updated_at", "state_updated_at"}


class ThreadRow(TypedDict):
    """A stored thread: its owner, the model it is a session of (if any), and its protocol status."""

    thread_id: UUID
    user_id: int
    model_id: int | None
    metadata: dict[str, Any]
    status: ThreadStatus
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    ttl_minutes: float | None
    """Time to live after the last activity (`updated_at`); with `ttl_strategy`, or both None."""
    ttl_strategy: PruneStrategy | None
    pruned_at: datetime | None
    """When retention last pruned the thread's checkpoints to its latest."""


class ThreadTTL(NamedTuple):
    """A thread's time to live: minutes after its last activity, and what then happens to it."""

    minutes: float
    strategy: PruneStrategy


def _thread(row: Any) -> ThreadRow:
    return cast(ThreadRow, dict(row))


async def create_thread(
    conn: AsyncConnection[Any],
    *,
    thread_id: UUID,
    user_id: int,
    model_id: int | None,
    metadata: dict[str, Any],
    ttl: ThreadTTL | None = None,
) -> ThreadRow | None:
    """Insert a thread; None when the id is taken."""
    minutes, strategy = ttl if ttl else (None, None)
    params = (thread_id, user_id, model_id, Jsonb(metadata), minutes, strategy)
    row = await (await conn.execute(INSERT_THREAD, params)).fetchone()
    return _thread(row) if row else None


async def get_thread(conn: AsyncConnection[Any], *, thread_id: UUID, user_id: int | None) -> ThreadRow | None:
    """A thread the user owns (any owner with user_id None)."""
    if user_id is None:
        row = await (await conn.execute(SELECT_THREAD_ANY, (thread_id,))).fetchone()
    else:
        row = await (await conn.execute(SELECT_THREAD, (thread_id, user_id))).fetchone()
    return _thread(row) if row else None


async def thread_exists(conn: AsyncConnection[Any], *, thread_id: UUID) -> bool:
    """Whether any user has this thread id."""
    return await (await conn.execute(THREAD_EXISTS, (thread_id,))).fetchone() is not None


async def patch_thread(
    conn: AsyncConnection[Any],
    *,
    thread_id: UUID,
    user_id: int,
    metadata: dict[str, Any],
    ttl: ThreadTTL | None = None,
) -> ThreadRow | None:
    """Merge metadata into the thread's; replace its time to live when `ttl` is given."""
    params = {
        "metadata": Jsonb(metadata),
        "set_ttl": ttl is not None,
        "ttl": ttl.minutes if ttl else None,
        "strategy": ttl.strategy if ttl else None,
        "thread_id": thread_id,
        "user_id": user_id,
    }
    row = await (await conn.execute(PATCH_THREAD, params)).fetchone()
    return _thread(row) if row else None


async def delete_threads(conn: AsyncConnection[Any], *, thread_ids: list[UUID]) -> None:
    """Delete threads and (by cascade) their runs and events; their checkpoints are the checkpointer's."""
    await conn.execute(DELETE_THREADS, (thread_ids,))


async def statuses(conn: AsyncConnection[Any], *, thread_ids: list[str]) -> dict[str, ThreadStatus]:
    """The protocol status of each of these threads that exists."""
    rows = await (await conn.execute(SELECT_STATUSES, (thread_ids,))).fetchall()
    return {r["thread_id"]: r["status"] for r in rows}


async def search_threads(
    conn: AsyncConnection[Any],
    *,
    user_id: int,
    ids: list[UUID] | None,
    metadata: dict[str, Any],
    status: str | None,
    limit: int,
    offset: int,
    sort_by: str,
    sort_order: str,
) -> list[ThreadRow]:
    """The user's threads matching every filter (metadata by containment)."""
    column = sort_by if sort_by in SORT_COLUMNS else "updated_at"
    direction = "ASC" if sort_order == "asc" else "DESC"
    sql = SEARCH_THREADS.format(order=f"{column} {direction}, thread_id")
    params = {
        "user_id": user_id,
        "ids": ids,
        "metadata": Jsonb(metadata),
        "status": status,
        "limit": limit,
        "offset": offset,
    }
    return [_thread(r) for r in await (await conn.execute(sql, params)).fetchall()]
