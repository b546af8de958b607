"""The run queue: procrastinate jobs over the same Postgres, one run at a time per thread.

Each run is a job locked on its thread id (procrastinate never runs two jobs with one lock at once,
and takes them in order), woken by LISTEN/NOTIFY. The connector rides out database restarts:
queries retry while the database is away and the listener reconnects, so a worker keeps beating.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import procrastinate
from procrastinate import JobContext
from procrastinate.connector import Notify
from procrastinate.jobs import Job, Notification
from procrastinate.worker import Worker
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tradegraph.database import Pool, is_disconnect, retrying

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
STALLED_AFTER_SECONDS = 8
"""A job whose worker has not beaten for this long is retried (recovery well inside 30 s)."""
LISTEN_RETRY_S = 1.0


class ResilientConnector(procrastinate.PsycopgConnector):
    """procrastinate's psycopg connector, retrying queries and re-listening across database restarts.

    Without it a restart stops the worker: its heartbeat or listener task fails and procrastinate
    shuts the worker down. procrastinate's queries are safe to repeat (a job deferred twice for one
    run is a no-op the second time: the run is no longer pending).
    """

    async def execute_query_async(self, query: Any, **arguments: Any) -> None:
        parent = super().execute_query_async
        await retrying(lambda: parent(query, **arguments), what="queue")

    async def execute_query_one_async(self, query: Any, **arguments: Any) -> Any:
        parent = super().execute_query_one_async
        return await retrying(lambda: parent(query, **arguments), what="queue")

    async def execute_query_all_async(self, query: Any, **arguments: Any) -> Any:
        parent = super().execute_query_all_async
        return await retrying(lambda: parent(query, **arguments), what="queue")

    async def close_async(self) -> None:
        """Close, and forget the pool it was given: procrastinate keeps a pool passed to `open_async`
        after closing, so the next `open_async` of the process (services started again, as tests
        do) would return early and query the closed pool."""
        await super().close_async()
        self._async_pool, self._pool_externally_set = None, False

    async def listen_notify(self, on_notification: Notify, channels: Iterable[str]) -> None:
        while True:
            try:
                await super().listen_notify(on_notification, channels)
            except Exception as exc:
                if not is_disconnect(exc):
                    raise
                log.warning("queue listener lost the database (%s); listening again", exc)
                await asyncio.sleep(LISTEN_RETRY_S)


queue = procrastinate.App(connector=ResilientConnector())


SWEEP_CRON = "*/10 * * * *"
"""When the retention sweep runs (server/retention.py): every 10 minutes, on one worker."""


@queue.task(name="tradegraph.execute_run", pass_context=True)
async def execute_run(context: JobContext, run_id: str) -> None:
    """Execute one run with this worker's executor."""
    await context.additional_context["executor"].execute(UUID(run_id))


@queue.periodic(cron=SWEEP_CRON)
@queue.task(name="tradegraph.retention_sweep", pass_context=True, queueing_lock="retention_sweep")
async def retention_sweep(context: JobContext, timestamp: int) -> None:
    """Apply retention (procrastinate defers each due time once, whatever the number of workers)."""
    await context.additional_context["sweeper"].sweep_due()


CRON_TICK = "* * * * * */5"
"""How often due crons are looked for (server/crons.py): every 5 seconds, on one worker."""
WEBHOOK_RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)
"""A failed webhook is tried again after about 2, 4, 8, ... 256 s (8 attempts in all)."""


@queue.periodic(cron=CRON_TICK)
@queue.task(name="tradegraph.cron_tick", pass_context=True, queueing_lock="cron_tick")
async def cron_tick(context: JobContext, timestamp: int) -> None:
    """Start the runs of due crons (each due time once, whatever the number of processes)."""
    await context.additional_context["crons"].fire_due()


@queue.task(name="tradegraph.deliver_webhook", pass_context=True, retry=WEBHOOK_RETRY)
async def deliver_webhook(context: JobContext, delivery_id: int) -> None:
    """One attempt at a webhook delivery; a failure raises and the queue retries it."""
    await context.additional_context["webhooks"].deliver(delivery_id)


async def enqueue_webhook(*, delivery_id: int) -> int:
    """Queue a webhook delivery; returns the job id."""
    return await deliver_webhook.defer_async(delivery_id=delivery_id)


async def stalled_run_jobs() -> list[Job]:
    """Run jobs in progress whose worker has not sent a heartbeat for STALLED_AFTER_SECONDS."""
    stalled = await queue.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS)
    return [job for job in stalled if job.task_name == execute_run.name]


async def retry_job(job: Job) -> None:
    """Put a stalled job back in the queue; the next worker continues its run from the last checkpoint."""
    log.warning("retrying run job %s: its worker stopped sending heartbeats", job.id)
    await queue.job_manager.retry_job(job)


async def enqueue_run(*, run_id: UUID, thread_id: UUID) -> int:
    """Queue a run behind any other run of the same thread; returns the job id."""
    return await execute_run.configure(lock=str(thread_id)).defer_async(run_id=str(run_id))


DEFER_RUN_JOB = """
SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
    %(job_queue)s, %(job_task)s, %(job_priority)s, %(job_lock)s, %(job_queueing_lock)s, %(job_args)s,
    %(job_scheduled_at)s
)::procrastinate_job_to_defer_v1]) AS job_ids
"""
"""A run's job, for a statement that stores the run and queues it at once (server/runs/lifecycle.py).

procrastinate's `defer_async` calls the same versioned SQL function (`procrastinate_defer_jobs_v1`,
its interface to the database, with the same job fields): the job's row and its NOTIFY to workers
commit with the run, or neither does. Parameters: `run_job_params`."""


def run_job_params(*, run_id: UUID, thread_id: UUID) -> dict[str, Any]:
    """DEFER_RUN_JOB's parameters: the job `enqueue_run` would defer, field by field."""
    job = execute_run.configure(lock=str(thread_id)).make_new_job(run_id=str(run_id))
    return {
        "job_queue": job.queue,
        "job_task": job.task_name,
        "job_priority": job.priority,
        "job_lock": job.lock,
        "job_queueing_lock": job.queueing_lock,
        "job_args": Jsonb(job.task_kwargs),
        "job_scheduled_at": job.scheduled_at,
    }


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


QUEUE_POOL_SIZE = 5
"""procrastinate's connections: its LISTEN connection, and short queries to fetch, finish and beat.
A running job holds none (a run uses the app's pool), so this does not grow with the run slots."""


def make_queue_pool(url: str) -> AsyncConnectionPool[Any]:
    """procrastinate's own small pool (QUEUE_POOL_SIZE), its connections in autocommit.

    Each of procrastinate's queries is one statement (a call of one of its SQL functions), atomic
    on its own. In a transaction, psycopg would send BEGIN before it and the pool COMMIT after it:
    three round trips for every defer, fetch, finish and heartbeat instead of one. (Autocommit is
    set by `configure`, not the pool's kwargs: procrastinate opens its LISTEN connection with the
    pool's kwargs plus `autocommit=True`, and would pass that argument twice.)

    No liveness check on checkout (a round trip per query): after a restart a query on a dead
    connection fails, the pool discards that connection, and the connector's retry takes another.
    """
    return AsyncConnectionPool(url, min_size=1, max_size=QUEUE_POOL_SIZE, open=False, configure=_autocommit)


async def _autocommit(conn: AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


class Executor(Protocol):
    """What a worker hands each run job to (server/runs/executor.py)."""

    async def execute(self, run_id: UUID) -> None: ...


class Sweeper(Protocol):
    """What a worker hands the periodic retention job to (server/retention.py)."""

    async def sweep_due(self) -> object: ...


class CronFirer(Protocol):
    """What a worker hands the periodic cron tick to (server/crons.py)."""

    async def fire_due(self) -> object: ...


class WebhookSender(Protocol):
    """What a worker hands webhook deliveries to (server/webhooks.py)."""

    async def deliver(self, delivery_id: int) -> None: ...


@dataclass(frozen=True)
class WorkerContext:
    """The objects a worker's jobs call: runs, retention, crons and webhooks."""

    executor: Executor
    sweeper: Sweeper
    crons: CronFirer
    webhooks: WebhookSender


FETCHERS = 4
"""Most jobs a worker asks the queue for at once, while it has free slots."""


class ParallelFetchWorker(Worker):
    """procrastinate's worker, fetching up to FETCHERS jobs at a time when many are queued.

    The stock worker fetches a job, starts it, and only then asks for the next: one round trip,
    plus a turn of a busy event loop, per job. When 100 runs were queued at once, that spread their
    starts over a second, in order, while the runs already taken went on with their bars. Here a
    round of fetching starts with one copy of the stock fetch loop, and each further new-job
    notification that arrives during the round adds another, up to FETCHERS: a single run costs
    the stock two fetches (its own and the empty one), a burst is fetched four at a time. The
    first round, when the worker starts and may find a backlog, starts with all of them. Each
    copy still takes a free slot before it fetches and stops when the queue has nothing for it,
    and the fetch query (`FOR UPDATE SKIP LOCKED`, per-lock order) is the one workers in several
    processes already share safely.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._fetchers: set[asyncio.Task[None]] = set()
        self._first_round = True

    async def _fetch_and_process_jobs(self) -> None:
        for _ in range(FETCHERS if self._first_round else 1):
            self._add_fetcher()
        self._first_round = False
        try:
            while self._fetchers:
                done, _ = await asyncio.wait(self._fetchers, return_when=asyncio.FIRST_COMPLETED)
                self._fetchers -= done
                for fetcher in done:
                    fetcher.result()  # a failed fetch stops the worker, as the stock loop's would
        finally:
            for fetcher in self._fetchers:
                fetcher.cancel()
            self._fetchers.clear()

    async def _handle_notification(self, *, channel: str, notification: Notification) -> None:
        await super()._handle_notification(channel=channel, notification=notification)
        if self._fetchers and notification["type"] == "job_inserted":
            self._add_fetcher()  # another job while a round is on: fetch it alongside

    def _add_fetcher(self) -> None:
        if len(self._fetchers) < FETCHERS:
            fetch: Callable[[], Coroutine[Any, Any, None]] = super()._fetch_and_process_jobs  # untyped
            self._fetchers.add(asyncio.create_task(fetch(), name="fetch jobs"))


async def run_worker(context: WorkerContext, concurrency: int) -> None:
    """The procrastinate worker until it stops (cancelled, or a side task failed for good)."""
    worker = ParallelFetchWorker(
        app=queue,
        concurrency=concurrency,
        wait=True,
        install_signal_handlers=False,
        additional_context={
            "executor": context.executor,
            "sweeper": context.sweeper,
            "crons": context.crons,
            "webhooks": context.webhooks,
        },
        update_heartbeat_interval=HEARTBEAT_SECONDS,
        stalled_worker_timeout=STALLED_AFTER_SECONDS * 4,
        fetch_job_polling_interval=2.0,
        abort_job_polling_interval=1.0,
        shutdown_graceful_timeout=5.0,
        delete_jobs="successful",
    )
    run: Callable[[], Awaitable[None]] = worker.run  # untyped upstream
    await run()


LIVE_WORKERS = """
SELECT count(*) AS n FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => %s)
"""


class WorkerCensus:
    """How many workers (in any process) sent a heartbeat recently, read at most once per `every_s`.

    Every stream and wait of a process asks it whether its run can still progress; sharing one
    reading keeps 100 followers from querying the queue 100 times over.
    """

    def __init__(self, pool: Pool, every_s: float = HEARTBEAT_SECONDS) -> None:
        self._pool, self._every_s = pool, every_s
        self._live, self._read_at = 0, float("-inf")

    async def live(self) -> int:
        """Live workers as of at most `every_s` ago."""
        now = asyncio.get_running_loop().time()
        if now - self._read_at >= self._every_s:
            async with self._pool.connection() as conn:
                row = await (await conn.execute(LIVE_WORKERS, (STALLED_AFTER_SECONDS,))).fetchone()
            self._live, self._read_at = int(row["n"]) if row else 0, now
        return self._live


QUEUE_STATS = """
SELECT
    (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND task_name = %(task)s) AS queued,
    (SELECT count(*) FROM runs WHERE status = 'pending') AS pending,
    (SELECT EXTRACT(EPOCH FROM now() - min(created_at)) FROM runs WHERE status = 'pending')
        AS oldest_pending_s,
    (SELECT count(*) FROM procrastinate_workers
     WHERE last_heartbeat > now() - make_interval(secs => %(stalled)s)) AS live_workers,
    (SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat)) FROM procrastinate_workers) AS last_heartbeat_s
"""


@dataclass(frozen=True)
class QueueStats:
    """The queue as every process sees it: waiting runs, and the workers that could take them."""

    queued: int
    """Run jobs waiting for a worker: new runs, and runs handed back or retried after a worker died."""
    pending: int
    """Runs not started yet."""
    oldest_pending_s: float | None
    live_workers: int
    """Workers (in any process) that sent a heartbeat within STALLED_AFTER_SECONDS."""
    last_heartbeat_s: float | None


async def queue_stats(pool: Pool) -> QueueStats:
    """One round trip: queued jobs, pending runs and the oldest one's age, live workers, newest heartbeat."""
    async with pool.connection() as conn:
        params = {"stalled": STALLED_AFTER_SECONDS, "task": execute_run.name}
        row = await (await conn.execute(QUEUE_STATS, params)).fetchone()
    assert row is not None, "a SELECT without FROM returns one row"
    return QueueStats(
        queued=int(row["queued"]),
        pending=int(row["pending"]),
        oldest_pending_s=None if row["oldest_pending_s"] is None else float(row["oldest_pending_s"]),
        live_workers=int(row["live_workers"]),
        last_heartbeat_s=None if row["last_heartbeat_s"] is None else float(row["last_heartbeat_s"]),
    )
