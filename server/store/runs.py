"""Runs: one row per run with its request (`kwargs`), status, queue job and cancellation request."""

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

ACTIVE = ("pending", "running")

INSERT_RUN = """
INSERT INTO runs (run_id, thread_id, user_id, assistant_id, metadata, kwargs, multitask_strategy)
VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *
"""
SET_JOB = "UPDATE runs SET job_id = %s WHERE run_id = %s"
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
UPDATE runs SET status = %s, error = %s, result = %s, updated_at = now()
WHERE run_id = %s AND status IN ('pending', 'running') RETURNING *
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
) -> dict[str, Any]:
    """Store a new pending run."""
    row = await (
        await conn.execute(
            INSERT_RUN,
            (run_id, thread_id, user_id, assistant_id, Jsonb(metadata), Jsonb(kwargs), multitask_strategy),
        )
    ).fetchone()
    assert row is not None
    return dict(row)


async def set_job(conn: AsyncConnection[Any], *, run_id: UUID, job_id: int) -> None:
    """Remember the queue job that executes the run (for cancellation)."""
    await conn.execute(SET_JOB, (job_id, run_id))


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
    status: str,
    error: dict[str, Any] | None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Record the outcome (and final values) of a run that is still active."""
    params = (status, Jsonb(error) if error else None, Jsonb(result) if result is not None else None, run_id)
    row = await (await conn.execute(FINISH_RUN, params)).fetchone()
    return dict(row) if row else None


async def request_cancel(conn: AsyncConnection[Any], *, run_id: UUID, action: str) -> dict[str, Any] | None:
    """Mark an active run interrupted at once and remember how to cancel it; None if not active."""
    row = await (await conn.execute(REQUEST_CANCEL, (action, run_id))).fetchone()
    return dict(row) if row else None


async def delete_run(conn: AsyncConnection[Any], *, run_id: UUID) -> None:
    """Remove a rolled-back run (its events go with it)."""
    await conn.execute(DELETE_RUN, (run_id,))
