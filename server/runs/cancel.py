"""Cancel runs: mark them at once, then abort their queue jobs (a running job's task is cancelled)."""

from typing import Any

from server.runs.notifier import notify
from server.runs.queue import abort_job, active_jobs
from server.store import runs as run_store
from tradegraph.database import Pool


async def abort_runs(pool: Pool, executor: Any, runs: list[dict[str, Any]], action: str) -> None:
    """Abort the jobs of runs already marked cancelled; clean up the ones that never started."""
    for run in runs:
        jobs = await active_jobs(run_id=run["run_id"], thread_id=run["thread_id"])
        never_started = bool(jobs) and all(job.status == "todo" for job in jobs)
        for job in jobs:
            if job.id is not None:
                await abort_job(job.id)
        async with pool.connection() as conn:
            if never_started and action == "rollback":
                await run_store.delete_run(conn, run_id=run["run_id"])
            if never_started:
                await executor.settle_thread(conn, run["thread_id"])
            await notify(conn, str(run["run_id"]))
