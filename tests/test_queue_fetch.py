"""A worker takes several queued runs at once (server/runs/queue.py), each exactly once."""

import asyncio
from collections import Counter
from typing import Any
from uuid import UUID, uuid4

import pytest

from server.runs.queue import FETCHERS, WorkerContext, enqueue_run, make_queue_pool, queue, run_worker

RUNS = 12
FETCH_DELAY_S = 0.05


class Recorder:
    """Executor, sweeper, cron firer and webhook sender in one: records the runs it is handed."""

    def __init__(self) -> None:
        self.executed: Counter[UUID] = Counter()
        self.all_done = asyncio.Event()

    async def execute(self, run_id: UUID) -> None:
        self.executed[run_id] += 1
        await asyncio.sleep(0.2)  # a run holds its slot for a while
        if len(self.executed) == RUNS:
            self.all_done.set()

    async def sweep_due(self) -> None:
        return None

    async def fire_due(self) -> None:
        return None

    async def deliver(self, delivery_id: int) -> None:
        return None


async def test_a_worker_fetches_queued_runs_side_by_side_and_runs_each_once(
    own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight, most_in_flight = 0, 0
    fetch_job = queue.job_manager.fetch_job

    async def slow_fetch(**kwargs: Any) -> Any:
        """The real fetch, after a round trip as slow as a busy server's."""
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            await asyncio.sleep(FETCH_DELAY_S)
            return await fetch_job(**kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(queue.job_manager, "fetch_job", slow_fetch)
    recorder = Recorder()
    context = WorkerContext(executor=recorder, sweeper=recorder, crons=recorder, webhooks=recorder)
    pool = make_queue_pool(own_database_url)
    await pool.open()
    await queue.open_async(pool=pool)
    worker: asyncio.Task[None] | None = None
    try:
        runs = [uuid4() for _ in range(RUNS)]
        for run_id in runs:
            await enqueue_run(run_id=run_id, thread_id=uuid4())
        worker = asyncio.create_task(run_worker(context, concurrency=RUNS))
        await asyncio.wait_for(recorder.all_done.wait(), timeout=30)
    finally:
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await queue.close_async()
        await pool.close()

    assert recorder.executed == Counter({run_id: 1 for run_id in runs})
    assert most_in_flight == FETCHERS  # the stock worker asks for one job at a time
