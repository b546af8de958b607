"""A run is stored and queued in one statement: never a pending run that no worker will take."""

from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from graph.builder import persistent_graph
from server.runs.job import RunJob
from server.runs.lifecycle import RunLifecycle, RunRequest
from server.runs.queue import DEFER_RUN_JOB, execute_run, run_job_params
from server.store import threads as thread_store

JOB_FIELDS = "SELECT queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, status"
REFUSE_RUN_JOBS = sql.SQL(
    "ALTER TABLE procrastinate_jobs ADD CONSTRAINT refuse_run_jobs CHECK (task_name <> {}) NOT VALID"
).format(sql.Literal(execute_run.name))
RUN_AND_THREAD = """
SELECT (SELECT count(*) FROM runs WHERE run_id = %s) AS runs, t.status
FROM threads t WHERE t.thread_id = %s
"""


async def test_the_run_job_is_the_one_procrastinate_defers(pool: Any) -> None:
    """The job queued beside a run has every field procrastinate's own `defer_async` gives it (compared
    inside a transaction that is rolled back, so no worker sees either job)."""
    run_id, thread_id = uuid4(), uuid4()
    params = run_job_params(run_id=run_id, thread_id=thread_id)
    theirs = execute_run.configure(lock=str(thread_id))
    rows = {}
    async with pool.connection() as conn, conn.transaction(force_rollback=True):
        ours = await (await conn.execute(DEFER_RUN_JOB, params)).fetchone()
        theirs_id = await theirs.job_manager.defer_job_async(
            theirs.make_new_job(run_id=str(run_id)), connection=conn
        )
        for name, job_id in (("ours", ours["job_ids"][0]), ("theirs", theirs_id.id)):
            query = f"{JOB_FIELDS} FROM procrastinate_jobs WHERE id = %s"
            rows[name] = await (await conn.execute(query, (job_id,))).fetchone()
    assert rows["ours"] == rows["theirs"]
    assert rows["ours"]["lock"] == str(thread_id) and rows["ours"]["args"] == {"run_id": str(run_id)}
    assert rows["ours"]["status"] == "todo"


async def test_a_run_whose_job_cannot_be_queued_is_not_stored(pool: Any, make_model: Any) -> None:
    """When the queue refuses the job, the run is not stored either and its thread does not turn busy
    (before, the run stayed pending for ever, its thread busy, with no job for a worker to take)."""
    model = await make_model()
    graph = persistent_graph(pool)
    lifecycle = RunLifecycle(pool, graph)
    thread_id, run_id = uuid4(), uuid4()
    async with pool.connection() as conn:
        await thread_store.create_thread(
            conn, thread_id=thread_id, user_id=model["user_id"], model_id=model["id"], metadata={}
        )
        await conn.execute(REFUSE_RUN_JOBS)
    try:
        with pytest.raises(psycopg.errors.CheckViolation):
            await lifecycle.submit(request(run_id, thread_id, model), strategy="enqueue")
    finally:
        async with pool.connection() as conn:
            await conn.execute("ALTER TABLE procrastinate_jobs DROP CONSTRAINT refuse_run_jobs")
    async with pool.connection() as conn:
        row = await (await conn.execute(RUN_AND_THREAD, (run_id, thread_id))).fetchone()
    assert row is not None and (row["runs"], row["status"]) == (0, "idle")


def request(run_id: UUID, thread_id: UUID, model: dict[str, Any]) -> RunRequest:
    job = RunJob(input={"model_id": model["id"], "signature": model["signature"]}, bars_total=1)
    return RunRequest(
        run_id=run_id,
        thread_id=thread_id,
        user_id=model["user_id"],
        assistant_id=uuid4(),
        job=job,
        metadata={},
        thread_metadata={},
    )
