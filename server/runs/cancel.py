"""Cancel runs: mark them at once, then abort their queue jobs (a running job's task is cancelled)."""

from typing import Any

from server.runs.notifier import notify
from server.runs.queue import abort_job, queue
from server.store import runs as run_store
from tradegraph.database import Pool


async def abort_runs(pool: Pool, executor: Any, runs: list[dict[str, Any]], action: str) -> None:
    """Abort the jobs of runs already marked cancelled; clean up the ones that never started."""
    for run in runs:
        if run.get("job_id") is None:
            continue
        await abort_job(run["job_id"])
        jobs = list(await queue.job_manager.list_jobs_async(id=run["job_id"]))
        never_started = bool(jobs) and getattr(jobs[0].status, "value", jobs[0].status) == "cancelled"
        async with pool.connection() as conn:
            if never_started and action == "rollback":
                await run_store.delete_run(conn, run_id=run["run_id"])
            if never_started:
                await executor.settle_thread(conn, run["thread_id"], failed=False)
            await notify(conn, str(run["run_id"]))
