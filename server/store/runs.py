"""Runs: one row per run with its request (`kwargs`), status and cancellation request."""

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

ACTIVE = ("pending", "running")

INSERT_RUN = """
WITH inserted AS (
    INSERT INTO runs (run_id, thread_id, user_id, assistant_id, metadata, kwargs, multitask_strategy)
    VALUES (%(run_id)s, %(thread_id)s, %(user_id)s, %(assistant_id)s, %(metadata)s, %(kwargs)s,
            %(multitask_strategy)s)
    RETURNING *
), busy AS (
    UPDATE threads SET status = 'busy', metadata = metadata || %(thread_metadata)s, updated_at = now()
    WHERE thread_id = %(thread_id)s
)
SELECT * FROM inserted
"""
SELECT_RUN = "SELECT * FROM runs WHERE run_id = %s AND thread_id = %s AND user_id = %s"
SELECT_RUN_ANY = "SELECT * FROM runs WHERE run_id = %s"
LIST_RUNS = """
SELECT * FROM runs WHERE thread_id = %s AND user_id = %s AND (%s::text IS NULL OR status = %s)
ORDER BY created_at DESC, run_id DESC LIMIT %s OFFSET %s
"""
ACTIVE_RUNS = """
SELECT * FROM runs WHERE thread_id = %s AND status IN ('pending', 'running') ORDER BY created_at
"""
START_RUN = """
WITH started AS (
    UPDATE runs SET status = 'running', attempt = attempt + 1, updated_at = now()
    WHERE run_id = %s AND status IN ('pending', 'running') RETURNING *
), busy AS (
    UPDATE threads SET status = 'busy', updated_at = now()
    WHERE thread_id = (SELECT thread_id FROM started)
)
SELECT * FROM started
"""
FINISH_RUN = """
WITH finished AS (
    UPDATE runs SET status = %(status)s, error = %(error)s, result = %(result)s, updated_at = now()
    WHERE run_id = %(run_id)s AND status IN ('pending', 'running')
    RETURNING run_id
), settled AS (
    UPDATE threads SET updated_at = now(), state_updated_at = now(), status = CASE
        WHEN EXISTS (SELECT 1 FROM runs WHERE thread_id = %(thread_id)s AND run_id <> %(run_id)s
                     AND status IN ('pending', 'running')) THEN 'busy'
        ELSE %(thread_status)s END
    WHERE thread_id = %(thread_id)s
)
SELECT pg_notify('tradegraph_runs', %(run_id)s::text), (SELECT count(*) FROM finished) AS finished
"""
REQUEST_CANCEL = """
UPDATE runs SET cancel_action = %s, status = 'interrupted', updated_at = now()
WHERE run_id = %s AND status IN ('pending', 'running') RETURNING *
"""
DELETE_RUN = "DELETE FROM runs WHERE run_id = %s"


async def insert_run(
    conn: AsyncConnection[Any],
    *,
    run_id: UUID,
    thread_id: UUID,
    user_id: int,
    assistant_id: UUID,
    metadata: dict[str, Any],
    kwargs: dict[str, Any],
    multitask_strategy: str,
    thread_metadata: dict[str, Any],
) -> dict[str, Any]:
    """Store a new pending run; its thread turns busy and gets `thread_metadata` merged in."""
    params = {
        "run_id": run_id,
        "thread_id": thread_id,
        "user_id": user_id,
        "assistant_id": assistant_id,
        "metadata": Jsonb(metadata),
        "kwargs": Jsonb(kwargs),
        "multitask_strategy": multitask_strategy,
        "thread_metadata": Jsonb(thread_metadata),
    }
    row = await (await conn.execute(INSERT_RUN, params)).fetchone()
    assert row is not None
    return dict(row)


async def get_run(
    conn: AsyncConnection[Any], *, run_id: UUID, thread_id: UUID | None = None, user_id: int | None = None
) -> dict[str, Any] | None:
    """A run; scoped to a thread and user unless both are None."""
    if user_id is None:
        row = await (await conn.execute(SELECT_RUN_ANY, (run_id,))).fetchone()
    else:
        row = await (await conn.execute(SELECT_RUN, (run_id, thread_id, user_id))).fetchone()
    return dict(row) if row else None


async def list_runs(
    conn: AsyncConnection[Any], *, thread_id: UUID, user_id: int, status: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    rows = await (
        await conn.execute(LIST_RUNS, (thread_id, user_id, status, status, limit, offset))
    ).fetchall()
    return [dict(r) for r in rows]


async def active_runs(conn: AsyncConnection[Any], *, thread_id: UUID) -> list[dict[str, Any]]:
    """Pending and running runs of a thread, oldest first."""
    return [dict(r) for r in await (await conn.execute(ACTIVE_RUNS, (thread_id,))).fetchall()]


async def start_run(conn: AsyncConnection[Any], *, run_id: UUID) -> dict[str, Any] | None:
    """Mark a run running (its thread busy) and count the attempt; None if cancelled or finished."""
    row = await (await conn.execute(START_RUN, (run_id,))).fetchone()
    return dict(row) if row else None


async def finish_run(
    conn: AsyncConnection[Any],
    *,
    run_id: UUID,
    thread_id: UUID,
    status: str,
    thread_status: str,
    error: dict[str, Any] | None,
    result: dict[str, Any] | None = None,
) -> bool:
    """Record a run's outcome and final values, settle its thread, wake followers; one round trip.

    The thread gets `thread_status` unless another run of it is still queued (then it stays busy).
    Returns False when the run was no longer active (cancelled meanwhile).
    """
    params = {
        "run_id": str(run_id),
        "thread_id": thread_id,
        "status": status,
        "thread_status": thread_status,
        "error": Jsonb(error) if error else None,
        "result": Jsonb(result) if result is not None else None,
    }
    row = await (await conn.execute(FINISH_RUN, params)).fetchone()
    return bool(row and row["finished"])


async def request_cancel(conn: AsyncConnection[Any], *, run_id: UUID, action: str) -> dict[str, Any] | None:
    """Mark an active run interrupted at once and remember how to cancel it; None if not active."""
    row = await (await conn.execute(REQUEST_CANCEL, (action, run_id))).fetchone()
    return dict(row) if row else None


async def delete_run(conn: AsyncConnection[Any], *, run_id: UUID) -> None:
    """Remove a rolled-back run (its events go with it)."""
    await conn.execute(DELETE_RUN, (run_id,))
