"""Threads: owned by a user, optionally bound to a trading model, with a protocol status."""

from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from typing_extensions import TypedDict

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]

INSERT_THREAD = """
INSERT INTO threads (thread_id, user_id, model_id, metadata) VALUES (%s, %s, %s, %s)
ON CONFLICT (thread_id) DO NOTHING RETURNING *
"""
SELECT_THREAD = "SELECT * FROM threads WHERE thread_id = %s AND user_id = %s"
SELECT_THREAD_ANY = "SELECT * FROM threads WHERE thread_id = %s"
THREAD_EXISTS = "SELECT user_id FROM threads WHERE thread_id = %s"
PATCH_METADATA = """
UPDATE threads SET metadata = metadata || %s, updated_at = now()
WHERE thread_id = %s AND user_id = %s RETURNING *
"""
DELETE_THREAD = "DELETE FROM threads WHERE thread_id = %s AND user_id = %s RETURNING thread_id"
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


def _thread(row: Any) -> ThreadRow:
    return cast(ThreadRow, dict(row))


async def create_thread(
    conn: AsyncConnection[Any],
    *,
    thread_id: UUID,
    user_id: int,
    model_id: int | None,
    metadata: dict[str, Any],
) -> ThreadRow | None:
    """Insert a thread; None when the id is taken."""
    row = await (
        await conn.execute(INSERT_THREAD, (thread_id, user_id, model_id, Jsonb(metadata)))
    ).fetchone()
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


async def patch_metadata(
    conn: AsyncConnection[Any], *, thread_id: UUID, user_id: int, metadata: dict[str, Any]
) -> ThreadRow | None:
    """Merge metadata into the thread's."""
    row = await (await conn.execute(PATCH_METADATA, (Jsonb(metadata), thread_id, user_id))).fetchone()
    return _thread(row) if row else None


async def delete_thread(conn: AsyncConnection[Any], *, thread_id: UUID, user_id: int) -> bool:
    """Delete a thread and (by cascade) its runs and events."""
    return await (await conn.execute(DELETE_THREAD, (thread_id, user_id))).fetchone() is not None


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
