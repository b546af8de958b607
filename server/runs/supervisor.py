"""Keep the run machinery of a process alive, or stop the process so that its supervisor replaces it.

- `WorkerSupervisor` runs the procrastinate worker and restarts it when it stops without being
  asked to; when it keeps dying it calls `on_fatal`, and the process exits non-zero (a server that
  accepts runs it will never execute is worse than one that restarts).
- `StalledJobSweeper` runs in every process, API-only ones included: it puts back in the queue the
  jobs of workers that stopped beating, so a dead worker's runs continue on any live worker.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from server.runs.queue import (
    HEARTBEAT_SECONDS,
    STALLED_AFTER_SECONDS,
    WorkerContext,
    retry_job,
    run_worker,
    stalled_run_jobs,
)

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
"""Deaths within DEATH_WINDOW_S beyond which the worker is given up and the process exits."""
DEATH_WINDOW_S = 120.0
SWEEP_EVERY_S = 4.0
STEADY_FOR_S = STALLED_AFTER_SECONDS + 2 * HEARTBEAT_SECONDS
"""The database must have answered promptly for this long before stalled jobs are retried: during an
outage every worker's heartbeats lapse, and retrying a job its live worker is still running would
run it twice."""
SLOW_SWEEP_S = 2.0


@dataclass
class WorkerHealth:
    """What readiness and metrics read about this process's worker."""

    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    given_up: bool = False


class WorkerSupervisor:
    """The in-process run worker as an asyncio task, restarted when it dies."""

    def __init__(
        self,
        context: WorkerContext,
        concurrency: int,
        *,
        on_fatal: Callable[[str], None],
        restart_s: float,
    ) -> None:
        self.health = WorkerHealth()
        self._restart_s = restart_s
        self._context, self._concurrency = context, concurrency
        self._on_fatal = on_fatal
        self._deaths: list[float] = []
        self._worker: asyncio.Task[None] | None = None
        self._task = asyncio.create_task(self._supervise(), name="run-worker-supervisor")

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._worker = asyncio.create_task(
                run_worker(self._context, self._concurrency), name="run-worker"
            )
            self.health.running = True
            try:
                await self._worker
                reason = "the worker stopped (a heartbeat or listener task failed)"
            except asyncio.CancelledError:
                if not self._task.cancelling():
                    reason = "the worker task was cancelled"
                else:
                    raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.health.running, self.health.last_error = False, reason
            now = loop.time()
            self._deaths = [t for t in self._deaths if now - t < DEATH_WINDOW_S] + [now]
            if len(self._deaths) > MAX_RESTARTS:
                self.health.given_up = True
                log.error(
                    "run worker died %d times in %.0f s (%s); giving up",
                    len(self._deaths),
                    DEATH_WINDOW_S,
                    reason,
                )
                self._on_fatal(f"run worker keeps dying: {reason}")
                return
            self.health.restarts += 1
            delay = self._restart_s * len(self._deaths)
            log.warning("run worker died (%s); restarting in %.0f s", reason, delay)
            await asyncio.sleep(delay)

    def kill(self) -> None:
        """Kill the worker task (a fault to test with): its runs go back to the queue, and it is restarted."""
        if self._worker is not None and not self._worker.done():
            self.health.running, self.health.last_error = False, "the worker task was killed"
            self._worker.cancel()

    async def stop(self) -> None:
        """Stop taking jobs; running jobs are given a few seconds, then handed back to the queue."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


class StalledJobSweeper:
    """Retries stalled run jobs every few seconds, once the database has been steady; never dies."""

    def __init__(self) -> None:
        self.last_error: str | None = None
        self._task = asyncio.create_task(self._sweep(), name="stalled-job-sweeper")

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        steady_since: float | None = None
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            started = loop.time()
            try:
                stalled = await stalled_run_jobs()
                if loop.time() - started > SLOW_SWEEP_S:  # the query waited for the database
                    steady_since = None
                    continue
                steady_since = steady_since or started
                if loop.time() - steady_since >= STEADY_FOR_S:
                    for job in stalled:
                        await retry_job(job)
                self.last_error = None
            except Exception as exc:
                steady_since, self.last_error = None, f"{type(exc).__name__}: {exc}"
                log.warning("stalled-job sweep failed: %s", self.last_error)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
