"""`tradegraph retention`: one retention sweep now, from the command line (ops, benchmarks)."""

from datetime import timedelta

from graph.checkpointer import ResilientPostgresSaver
from server.retention import Retention, SweepReport
from server.runs.queue import make_queue_pool, queue
from tradegraph.bootstrap import prepare_database
from tradegraph.database import database_url, make_pool


async def sweep_once(*, events_days: float, checkpoint_days: float) -> SweepReport:
    """Apply expired TTLs, prune threads settled `checkpoint_days` ago, drop events of older runs."""
    url = database_url()
    await prepare_database(url)
    pool, queue_pool = make_pool(url, max_size=4), make_queue_pool(url)
    await pool.open()
    await queue_pool.open()
    await queue.open_async(pool=queue_pool)
    try:
        retention = Retention(pool, ResilientPostgresSaver(pool))
        return await retention.sweep(
            events_after=timedelta(days=events_days), checkpoints_after=timedelta(days=checkpoint_days)
        )
    finally:
        await queue.close_async()
        await queue_pool.close()
        await pool.close()
