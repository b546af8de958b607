"""Runs: one row per run with its job (`kwargs`), status, result and cancellation request."""

from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

from psycopg import AsyncConnection
from typing_extensions import TypedDict

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
ACTIVE: tuple[RunStatus, ...] = ("pending", "running")
"""Statuses of a run that has not finished (its thread counts as busy)."""

SELECT_RUN = "SELECT * FROM runs WHERE run_id = %s AND thread_id = %s AND user_id = %s"
SELECT_RUN_ANY = "SELECT * FROM runs WHERE run_id = %s"
LIST_RUNS = """
SELECT * FROM runs WHERE thread_id = %s AND user_id = %s AND (%s::text IS NULL OR status = %s)
ORDER BY created_at DESC, run_id DESC LIMIT %s OFFSET %s
"""
ACTIVE_RUNS = """
SELECT * FROM runs WHERE thread_id = %s AND status = ANY(%s) ORDER BY created_at
"""


class RunRow(TypedDict):
    """A stored run."""

    run_id: UUID
    thread_id: UUID
    user_id: int
    assistant_id: UUID
    status: RunStatus
    metadata: dict[str, Any]
    kwargs: dict[str, Any]
    """The run's job (server/runs/job.py) as JSON."""
    multitask_strategy: str
    attempt: int
    error: dict[str, Any] | None
    result: dict[str, Any] | None
    cancel_action: Literal["interrupt", "rollback"] | None
    created_at: datetime
    updated_at: datetime


def run_row(row: Any) -> RunRow:
    """A database row as a RunRow."""
    return cast(RunRow, dict(row))


async def get_run(
    conn: AsyncConnection[Any], *, run_id: UUID, thread_id: UUID | None = None, user_id: int | None = None
) -> RunRow | None:
    """A run; scoped to a thread and user unless both are None."""
    if user_id is None:
        row = await (await conn.execute(SELECT_RUN_ANY, (run_id,))).fetchone()
    else:
        row = await (await conn.execute(SELECT_RUN, (run_id, thread_id, user_id))).fetchone()
    return run_row(row) if row else None


async def list_runs(
    conn: AsyncConnection[Any], *, thread_id: UUID, user_id: int, status: str | None, limit: int, offset: int
) -> list[RunRow]:
    """The thread's runs, newest first."""
    rows = await (
        await conn.execute(LIST_RUNS, (thread_id, user_id, status, status, limit, offset))
    ).fetchall()
    return [run_row(r) for r in rows]


async def active_runs(conn: AsyncConnection[Any], *, thread_id: UUID) -> list[RunRow]:
    """Pending and running runs of a thread, oldest first."""
    rows = await (await conn.execute(ACTIVE_RUNS, (thread_id, list(ACTIVE)))).fetchall()
    return [run_row(r) for r in rows]
