"""What the app and the workers share: the pool, the compiled graph, the lifecycle, notifier and worker."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph.state import CompiledStateGraph
from psycopg_pool import AsyncConnectionPool

from graph.builder import persistent_graph
from server.crons import CronScheduler
from server.retention import Retention
from server.runs.executor import RunExecutor
from server.runs.lifecycle import RunLifecycle
from server.runs.notifier import Notifier
from server.runs.queue import WorkerCensus, WorkerContext, make_queue_pool, queue
from server.runs.supervisor import StalledJobSweeper, WorkerSupervisor
from server.webhooks import WebhookOutbox
from tradegraph.database import Pool
from tradegraph.settings import get_settings


def _log_only(reason: str) -> None:
    """Default `on_fatal`: nothing to stop (the caller watches `worker.health`)."""


@dataclass
class RunServices:
    """Started in the lifespan (or by `tradegraph worker`), stopped on shutdown."""

    pool: Pool
    graph: CompiledStateGraph[Any, Any, Any, Any]
    lifecycle: RunLifecycle
    retention: Retention
    notifier: Notifier
    queue_pool: AsyncConnectionPool[Any]
    census: WorkerCensus
    sweeper: StalledJobSweeper
    worker: WorkerSupervisor | None

    @classmethod
    async def start(
        cls, url: str, pool: Pool, *, workers: int, on_fatal: Callable[[str], None] = _log_only
    ) -> "RunServices":
        """Open the queue, start listening and sweeping, and start `workers` run slots (0 for none).

        `on_fatal` is called when the worker cannot be kept alive: the process should exit non-zero.
        """
        graph = persistent_graph(pool)
        lifecycle = RunLifecycle(pool, graph)
        assert isinstance(graph.checkpointer, AsyncPostgresSaver), "the service's graph is checkpointed"
        retention = Retention(pool, graph.checkpointer)
        notifier = Notifier(url)
        await notifier.start()
        queue_pool = make_queue_pool(url)
        await queue_pool.open()
        await queue.open_async(pool=queue_pool)
        webhooks = WebhookOutbox(pool)
        executor = RunExecutor(pool, graph, lifecycle, webhooks, feed=notifier)
        crons = CronScheduler(pool, graph, lifecycle)
        context = WorkerContext(executor=executor, sweeper=retention, crons=crons, webhooks=webhooks)
        restart_s = get_settings().worker_restart_s
        worker = (
            WorkerSupervisor(context, workers, on_fatal=on_fatal, restart_s=restart_s)
            if workers > 0
            else None
        )
        census, sweeper = WorkerCensus(pool), StalledJobSweeper()
        return cls(pool, graph, lifecycle, retention, notifier, queue_pool, census, sweeper, worker)

    async def stop(self) -> None:
        """Stop the worker and the sweeper, then the queue and the notifier."""
        if self.worker:
            await self.worker.stop()
        await self.sweeper.stop()
        await queue.close_async()
        await self.queue_pool.close()
        await self.notifier.stop()
