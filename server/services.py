"""What the app and the workers share: the pool, the compiled graph, the lifecycle, notifier and worker."""

from dataclasses import dataclass
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from psycopg_pool import AsyncConnectionPool

from graph.builder import persistent_graph
from server.runs.executor import RunExecutor
from server.runs.lifecycle import RunLifecycle
from server.runs.notifier import Notifier
from server.runs.queue import WorkerHandle, make_queue_pool, queue
from tradegraph.database import Pool


@dataclass
class RunServices:
    """Started in the lifespan (or by `tradegraph worker`), stopped on shutdown."""

    pool: Pool
    graph: CompiledStateGraph[Any, Any, Any, Any]
    lifecycle: RunLifecycle
    notifier: Notifier
    queue_pool: AsyncConnectionPool[Any]
    worker: WorkerHandle | None

    @classmethod
    async def start(cls, url: str, pool: Pool, *, workers: int) -> "RunServices":
        """Open the queue, start listening, and start `workers` in-process run slots (0 for none)."""
        graph = persistent_graph(pool)
        lifecycle = RunLifecycle(pool, graph)
        notifier = Notifier(url)
        await notifier.start()
        queue_pool = make_queue_pool(url, max(workers, 1))
        await queue_pool.open()
        await queue.open_async(pool=queue_pool)
        worker = WorkerHandle(RunExecutor(pool, graph, lifecycle), workers) if workers > 0 else None
        return cls(pool, graph, lifecycle, notifier, queue_pool, worker)

    async def stop(self) -> None:
        """Stop the worker, then the queue and the notifier."""
        if self.worker:
            await self.worker.stop()
        await queue.close_async()
        await self.queue_pool.close()
        await self.notifier.stop()
