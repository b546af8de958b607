"""The run and thread state machine: every status change of a run or a thread happens here.

    run:     pending -> running -> success | error          (finish)
             pending | running -> interrupted               (cancel; `rollback` then deletes the run)
    thread:  busy while any run is pending or running; then interrupted (paused, or work left),
             idle, or error (its last run failed)

Each change is one statement where it can be (the thread settles in the same statement as the
run), and each wakes the run's followers through `notify`, so streams and waits in any process see
it at once. Routers, the executor and the queue ask this module; none writes a status itself.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from graph.config import thread_config
from server.runs.job import RunJob
from server.runs.notifier import CHANNEL, finished_payload, notify
from server.runs.queue import DEFER_RUN_JOB, abort_job, active_jobs, enqueue_run, run_job_params
from server.state_json import final_values
from server.store import runs as run_store
from server.store.runs import ACTIVE, RunRow, run_row
from server.store.threads import ThreadStatus
from tradegraph.database import Pool, retrying

log = logging.getLogger(__name__)

Strategy = Literal["reject", "enqueue", "interrupt", "rollback"]
CancelAction = Literal["interrupt", "rollback"]

INSERT_RUN = f"""
WITH inserted AS (
    INSERT INTO runs (run_id, thread_id, user_id, assistant_id, metadata, kwargs, multitask_strategy)
    VALUES (%(run_id)s, %(thread_id)s, %(user_id)s, %(assistant_id)s, %(metadata)s, %(kwargs)s,
            %(multitask_strategy)s)
    RETURNING *
), busy AS (
    UPDATE threads SET status = 'busy', metadata = metadata || %(thread_metadata)s, updated_at = now()
    WHERE thread_id = %(thread_id)s
), queued AS ({DEFER_RUN_JOB} FROM inserted)
SELECT inserted.* FROM inserted, queued
"""
"""Store a pending run, turn its thread busy and queue its job: one statement, so a run is never
stored without the job a worker takes it by (nor queued without its row)."""
LOCK_THREAD = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
START_RUN = """
WITH started AS (
    UPDATE runs SET status = 'running', attempt = attempt + 1, updated_at = now()
    WHERE run_id = %s AND status = ANY(%s) RETURNING *
), busy AS (
    UPDATE threads SET status = 'busy', updated_at = now()
    WHERE thread_id = (SELECT thread_id FROM started)
)
SELECT * FROM started
"""
FINISH_RUN = """
WITH finished AS (
    UPDATE runs SET status = %(status)s, error = %(error)s, result = %(result)s, updated_at = now()
    WHERE run_id = %(run_id)s AND status = ANY(%(active)s)
    RETURNING updated_at, cancel_action
), settled AS (
    UPDATE threads SET updated_at = now(), state_updated_at = now(), status = CASE
        WHEN EXISTS (SELECT 1 FROM runs WHERE thread_id = %(thread_id)s AND run_id <> %(run_id)s
                     AND status = ANY(%(active)s)) THEN 'busy'
        ELSE %(thread_status)s END
    WHERE thread_id = %(thread_id)s
)
SELECT pg_notify(%(channel)s, %(payload)s), f.*, f.updated_at IS NOT NULL AS finished
FROM (VALUES (1)) AS one (x) LEFT JOIN finished f ON true  -- one row, finished or not
"""
REQUEST_CANCEL = """
UPDATE runs SET cancel_action = %s, status = 'interrupted', updated_at = now()
WHERE run_id = %s AND status = ANY(%s) RETURNING *
"""
SET_THREAD_STATUS = """
UPDATE threads SET status = %s, updated_at = now(), state_updated_at = now() WHERE thread_id = %s
"""
DELETE_RUN = "DELETE FROM runs WHERE run_id = %s"
DELETE_RUN_CHECKPOINTS = """
WITH doomed AS (
    DELETE FROM checkpoints WHERE thread_id = %(thread)s AND metadata->>'run_id' = %(run)s
    RETURNING checkpoint_ns, checkpoint_id, checkpoint -> 'channel_versions' AS versions
), writes AS (
    DELETE FROM checkpoint_writes w USING doomed d
    WHERE w.thread_id = %(thread)s AND w.checkpoint_ns = d.checkpoint_ns AND w.checkpoint_id = d.checkpoint_id
), freed AS (
    SELECT DISTINCT d.checkpoint_ns, v.key AS channel, v.value AS version
    FROM doomed d CROSS JOIN LATERAL jsonb_each_text(d.versions) AS v
)
DELETE FROM checkpoint_blobs b USING freed f
WHERE b.thread_id = %(thread)s AND b.checkpoint_ns = f.checkpoint_ns
  AND b.channel = f.channel AND b.version = f.version
  AND NOT EXISTS (  -- still used by a checkpoint the run did not write (this statement's snapshot has all)
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = %(thread)s AND c.checkpoint_ns = f.checkpoint_ns
      AND c.checkpoint -> 'channel_versions' ->> f.channel = f.version
      AND c.checkpoint_id NOT IN (SELECT checkpoint_id FROM doomed)
  )
"""
"""A rolled-back run's checkpoints, their writes, and the blobs no remaining checkpoint references.

The checkpointer has no call for "the checkpoints one run wrote" (its `aprune` keeps the latest,
which here is the run's own), so this one statement does what `aprune` does for the blobs."""
DELETE_ORPHAN_WRITES = """
DELETE FROM checkpoint_writes w
WHERE w.thread_id = %(thread)s AND NOT EXISTS (
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns
      AND c.checkpoint_id = w.checkpoint_id
)
"""
"""Writes whose checkpoint is gone: a cancelled step's writes can land just after a rollback's delete."""
ORPHAN_GRACE_S = 1.0
"""How long after a rollback its late writes are looked for again."""
BUSY = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."


@dataclass(frozen=True)
class RunRequest:
    """A checked run, ready to be stored and queued."""

    run_id: UUID
    thread_id: UUID
    user_id: int
    assistant_id: UUID
    job: RunJob
    metadata: dict[str, Any]
    thread_metadata: dict[str, Any]
    """Merged into the thread's metadata (which graph and assistant it runs)."""

    def params(self, strategy: Strategy) -> dict[str, Any]:
        """The INSERT_RUN parameters."""
        return {
            **run_job_params(run_id=self.run_id, thread_id=self.thread_id),
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "user_id": self.user_id,
            "assistant_id": self.assistant_id,
            "metadata": Jsonb(self.metadata),
            "kwargs": Jsonb(self.job.model_dump(mode="json")),
            "multitask_strategy": strategy,
            "thread_metadata": Jsonb(self.thread_metadata),
        }


class ThreadBusy(Exception):
    """`multitask_strategy: reject` met a thread with a run in flight."""

    def __init__(self) -> None:
        super().__init__(BUSY)


def paused_or_idle(snapshot: StateSnapshot) -> ThreadStatus:
    """`interrupted` while the graph has work left (a pause, or a run cancelled mid-step), else `idle`.

    `snapshot.next` alone misses a run cancelled after a step's writes were saved but before its
    checkpoint: its tasks are listed but not in `next`, and a resume with no input continues it.
    """
    return "interrupted" if snapshot.tasks else "idle"


class RunLifecycle:
    """Moves runs and threads between statuses, for the routers, the executor and cancellation."""

    def __init__(self, pool: Pool, graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
        self.pool, self.graph = pool, graph

    async def submit(self, request: RunRequest, *, strategy: Strategy) -> RunRow:
        """Store and queue a pending run (its thread turns busy), applying the multitask strategy."""
        params = request.params(strategy)
        doomed: list[RunRow] = []
        async with self.pool.connection() as conn:
            if strategy == "enqueue":  # nothing to decide about other runs: one atomic insert
                run = await self._insert(conn, params)
            else:
                async with conn.transaction():
                    await conn.execute(LOCK_THREAD, (str(request.thread_id),))
                    active = await run_store.active_runs(conn, thread_id=request.thread_id)
                    if active and strategy == "reject":
                        raise ThreadBusy
                    for old in active:  # interrupt or rollback
                        if marked := await self._mark_cancelled(conn, old["run_id"], strategy):
                            doomed.append(marked)
                    run = await self._insert(conn, params)
        await self._abort(doomed, strategy)
        return run

    async def start(self, run_id: UUID) -> RunRow | None:
        """Mark a run running (its thread busy) and count the attempt; None if cancelled or finished."""

        async def started() -> RunRow | None:
            async with self.pool.connection() as conn:
                row = await (await conn.execute(START_RUN, (run_id, list(ACTIVE)))).fetchone()
            return run_row(row) if row else None

        return await retrying(started, what=f"start of run {run_id}")

    async def finish(
        self, run: RunRow, *, error: dict[str, str] | None, snapshot: StateSnapshot | None
    ) -> RunRow | None:
        """Record the error, or success with `snapshot`'s final values; settle the thread; wake followers.

        The thread gets `error`, or `interrupted`/`idle` from the graph's state, unless another run of
        it is still queued (then it stays busy). Returns the finished run as stored (`run` is the
        row it started with); None when the run was cancelled meanwhile.
        """
        result = final_values(snapshot) if snapshot is not None and not error else None
        thread_status: ThreadStatus = "error" if error or snapshot is None else paused_or_idle(snapshot)
        params = {
            "run_id": str(run["run_id"]),
            "thread_id": run["thread_id"],
            "status": "error" if error else "success",
            "thread_status": thread_status,
            "error": Jsonb(error) if error else None,
            "result": Jsonb(result) if result is not None else None,
            "active": list(ACTIVE),
            "channel": CHANNEL,
            "payload": finished_payload(str(run["run_id"])),
        }

        async def finished() -> RunRow | None:
            async with self.pool.connection() as conn:
                row = await (await conn.execute(FINISH_RUN, params)).fetchone()
            if not (row and row["finished"]):
                return None
            stored = {"updated_at": row["updated_at"], "cancel_action": row["cancel_action"]}
            return run_row({**run, "status": params["status"], "error": error, "result": result, **stored})

        return await retrying(finished, what=f"end of run {run['run_id']}")

    async def cancel(self, run: RunRow, action: CancelAction) -> bool:
        """Mark an active run interrupted and abort its job; False if it was no longer active."""
        async with self.pool.connection() as conn:
            marked = await self._mark_cancelled(conn, run["run_id"], action)
        if marked is None:
            return False
        await self._abort([marked], action)
        return True

    async def roll_back(self, run: RunRow) -> None:
        """Erase a cancelled run: its checkpoints, then the run with its events; settle the thread."""
        thread_id = str(run["thread_id"])
        async with self.pool.connection() as conn:
            await conn.execute(DELETE_RUN_CHECKPOINTS, {"thread": thread_id, "run": str(run["run_id"])})
            await conn.execute(DELETE_ORPHAN_WRITES, {"thread": thread_id})
            await conn.execute(DELETE_RUN, (run["run_id"],))
            await self._settle(conn, run["thread_id"])
            await notify(conn, str(run["run_id"]))
        await asyncio.sleep(ORPHAN_GRACE_S)  # the cancelled step's own writes may still have been in flight
        async with self.pool.connection() as conn:
            await conn.execute(DELETE_ORPHAN_WRITES, {"thread": thread_id})

    async def settle_thread(self, thread_id: UUID) -> None:
        """Thread status outside a finishing run: busy if runs are queued, else interrupted / idle."""
        async with self.pool.connection() as conn:
            await self._settle(conn, thread_id)

    async def hand_back(self, run: RunRow) -> None:
        """A worker shutting down returns its run to the queue; the next worker resumes it."""
        job_id = await enqueue_run(run_id=run["run_id"], thread_id=run["thread_id"])
        log.info("run %s handed back to the queue as job %s", run["run_id"], job_id)

    async def _insert(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> RunRow:
        row = await (await conn.execute(INSERT_RUN, params)).fetchone()
        assert row is not None, "INSERT ... RETURNING always returns the row"
        return run_row(row)

    async def _mark_cancelled(self, conn: AsyncConnection[Any], run_id: UUID, action: str) -> RunRow | None:
        row = await (await conn.execute(REQUEST_CANCEL, (action, run_id, list(ACTIVE)))).fetchone()
        return run_row(row) if row else None

    async def _abort(self, runs: list[RunRow], action: str) -> None:
        """Abort the jobs of runs already marked cancelled; clean up the ones that never started."""
        for run in runs:
            jobs = await active_jobs(run_id=run["run_id"], thread_id=run["thread_id"])
            never_started = bool(jobs) and all(job.status == "todo" for job in jobs)
            for job in jobs:
                if job.id is not None:
                    await abort_job(job.id)
            async with self.pool.connection() as conn:
                if never_started and action == "rollback":
                    await conn.execute(DELETE_RUN, (run["run_id"],))
                if never_started:
                    await self._settle(conn, run["thread_id"])
                await notify(conn, str(run["run_id"]))

    async def _settle(self, conn: AsyncConnection[Any], thread_id: UUID) -> None:
        if await run_store.active_runs(conn, thread_id=thread_id):
            status: ThreadStatus = "busy"
        else:
            status = paused_or_idle(await self._snapshot(thread_id))
        await conn.execute(SET_THREAD_STATUS, (status, thread_id))

    async def _snapshot(self, thread_id: UUID) -> StateSnapshot:
        return await self.graph.aget_state(thread_config(thread_id))
