"""The run queue: procrastinate jobs over the same Postgres, one run at a time per thread.

Each run is a job locked on its thread id (procrastinate never runs two jobs with one lock at once,
and takes them in order), woken by LISTEN/NOTIFY. Workers send heartbeats; a periodic task retries
jobs whose worker stopped beating (killed, crashed), so their runs continue elsewhere.
"""

import asyncio
import contextlib
import logging
from typing import Protocol
from uuid import UUID

import procrastinate
from procrastinate import JobContext
from procrastinate.jobs import Job
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

queue = procrastinate.App(connector=procrastinate.PsycopgConnector())
HEARTBEAT_SECONDS = 2.0
STALLED_AFTER_SECONDS = 8
"""A job whose worker has not beaten for this long is retried (recovery well inside 30 s)."""


@queue.task(name="tradegraph.execute_run", pass_context=True)
async def execute_run(context: JobContext, run_id: str) -> None:
    """Execute one run with this worker's executor."""
    await context.additional_context["executor"].execute(UUID(run_id))


@queue.periodic(cron="* * * * * */4", periodic_id="recover-stalled-runs")
@queue.task(name="tradegraph.recover_stalled_runs", queueing_lock="recover-stalled-runs", pass_context=True)
async def recover_stalled_runs(context: JobContext, timestamp: int) -> None:
    """Put back in the queue the runs whose worker died."""
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS):
        if job.task_name == execute_run.name:
            log.warning("retrying run job %s: its worker stopped sending heartbeats", job.id)
            await manager.retry_job(job)


async def enqueue_run(*, run_id: UUID, thread_id: UUID) -> int:
    """Queue a run behind any other run of the same thread; returns the job id."""
    return await execute_run.configure(lock=str(thread_id)).defer_async(run_id=str(run_id))


async def active_jobs(*, run_id: UUID, thread_id: UUID) -> list[Job]:
    """The queued or running jobs of a run (found by the thread lock and the run id argument)."""
    jobs = await queue.job_manager.list_jobs_async(lock=str(thread_id), task=execute_run.name)
    return [
        job
        for job in jobs
        if job.task_kwargs.get("run_id") == str(run_id) and job.status in ("todo", "doing")
    ]


async def abort_job(job_id: int) -> None:
    """Cancel a queued job, or abort it (cancelling its task) if it is running."""
    await queue.job_manager.cancel_job_by_id_async(job_id, abort=True)


def make_queue_pool(url: str, concurrency: int) -> AsyncConnectionPool:
    """procrastinate's own small pool (its LISTEN connection plus one per concurrent fetch)."""
    return AsyncConnectionPool(url, min_size=1, max_size=concurrency + 3, open=False)


class Executor(Protocol):
    """What a worker hands each run job to (server/runs/executor.py)."""

    async def execute(self, run_id: UUID) -> None: ...


class WorkerHandle:
    """An in-process procrastinate worker running as an asyncio task."""

    def __init__(self, executor: Executor, concurrency: int) -> None:
        self._task = asyncio.create_task(
            queue.run_worker_async(
                concurrency=concurrency,
                wait=True,
                install_signal_handlers=False,
                additional_context={"executor": executor},
                update_heartbeat_interval=HEARTBEAT_SECONDS,
                stalled_worker_timeout=STALLED_AFTER_SECONDS * 4,
                fetch_job_polling_interval=2.0,
                abort_job_polling_interval=1.0,
                shutdown_graceful_timeout=5.0,
                delete_jobs="successful",
            ),
            name="run-worker",
        )

    async def stop(self) -> None:
        """Stop taking jobs; running jobs are given a few seconds, then aborted (and retried later)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
