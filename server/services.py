"""What the app and the workers share: the pool, the compiled graph, the notifier and the executor."""

from dataclasses import dataclass
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from psycopg_pool import AsyncConnectionPool

from server.runs.executor import RunExecutor
from server.runs.notifier import Notifier
from server.runs.queue import WorkerHandle, make_queue_pool, queue
from tradegraph.database import Pool
from tradegraph.runner import persistent_graph


@dataclass
class RunServices:
    """Started in the lifespan, stopped on shutdown."""

    pool: Pool
    graph: CompiledStateGraph[Any, Any, Any, Any]
    notifier: Notifier
    executor: RunExecutor
    queue_pool: AsyncConnectionPool
    worker: WorkerHandle | None

    @classmethod
    async def start(cls, url: str, pool: Pool, *, workers: int) -> "RunServices":
        """Open the queue, start listening, and start `workers` in-process run slots (0 for none)."""
        graph = persistent_graph(pool)
        notifier = Notifier(url)
        await notifier.start()
        queue_pool = make_queue_pool(url, max(workers, 1))
        await queue_pool.open()
        await queue.open_async(pool=queue_pool)
        executor = RunExecutor(pool, graph)
        worker = WorkerHandle(executor, workers) if workers > 0 else None
        return cls(pool, graph, notifier, executor, queue_pool, worker)

    async def stop(self) -> None:
        """Stop the worker, then the queue and the notifier."""
        if self.worker:
            await self.worker.stop()
        await queue.close_async()
        await self.queue_pool.close()
        await self.notifier.stop()
