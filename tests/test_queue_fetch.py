"""A worker takes several queued runs at once (server/runs/queue.py), each exactly once."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import pytest

from server.runs.queue import FETCHERS, WorkerContext, enqueue_run, make_queue_pool, queue, run_worker

RUNS = 12
FETCH_DELAY_S = 0.05


class Recorder:
    """Executor, sweeper, cron firer and webhook sender in one: records the runs it is handed."""

    def __init__(self, expected: int) -> None:
        self.executed: Counter[UUID] = Counter()
        self.all_done = asyncio.Event()
        self._expected = expected

    def expect(self, more: int) -> None:
        self._expected += more
        self.all_done.clear()

    async def execute(self, run_id: UUID) -> None:
        self.executed[run_id] += 1
        await asyncio.sleep(0.2)  # a run holds its slot for a while
        if len(self.executed) == self._expected:
            self.all_done.set()

    async def sweep_due(self) -> None:
        return None

    async def fire_due(self) -> None:
        return None

    async def deliver(self, delivery_id: int) -> None:
        return None


class Fetches:
    """procrastinate's fetch, each one made as slow as a busy server's round trip, counted."""

    def __init__(self, fetch_job: Any) -> None:
        self._fetch_job = fetch_job
        self.made = self.in_flight = self.most_in_flight = 0
        self._changed = asyncio.Condition()

    async def __call__(self, **kwargs: Any) -> Any:
        await self._change(made=1, in_flight=1)
        try:
            await asyncio.sleep(FETCH_DELAY_S)
            return await self._fetch_job(**kwargs)
        finally:
            await self._change(made=0, in_flight=-1)

    async def _change(self, *, made: int, in_flight: int) -> None:
        async with self._changed:
            self.made += made
            self.in_flight += in_flight
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._changed.notify_all()

    async def settled(self, *, made: int) -> None:
        """Until at least `made` fetches were made and none is under way."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.made >= made and not self.in_flight)


@asynccontextmanager
async def worker_on(database_url: str, recorder: Recorder, *, backlog: int = 0) -> AsyncIterator[list[UUID]]:
    """A worker over the queue in `database_url`, started once `backlog` runs are queued (their ids)."""
    context = WorkerContext(executor=recorder, sweeper=recorder, crons=recorder, webhooks=recorder)
    pool = make_queue_pool(database_url)
    await pool.open()
    await queue.open_async(pool=pool)
    queued = await enqueue(backlog)
    worker = asyncio.create_task(run_worker(context, concurrency=RUNS))
    try:
        yield queued
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await queue.close_async()
        await pool.close()


async def enqueue(count: int) -> list[UUID]:
    runs = [uuid4() for _ in range(count)]
    for run_id in runs:
        await enqueue_run(run_id=run_id, thread_id=uuid4())
    return runs


async def test_a_backlog_is_fetched_side_by_side_and_each_run_once(
    own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker starting with runs queued (after a restart) takes them several at a time."""
    fetches = Fetches(queue.job_manager.fetch_job)
    monkeypatch.setattr(queue.job_manager, "fetch_job", fetches)
    recorder = Recorder(expected=RUNS)
    async with worker_on(own_database_url, recorder, backlog=RUNS) as runs:
        await asyncio.wait_for(recorder.all_done.wait(), timeout=30)
    assert recorder.executed == Counter(dict.fromkeys(runs, 1))
    assert fetches.most_in_flight == FETCHERS  # the stock worker asks for one job at a time


async def test_a_single_run_costs_two_fetches_and_a_burst_is_fetched_side_by_side(
    own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches = Fetches(queue.job_manager.fetch_job)
    monkeypatch.setattr(queue.job_manager, "fetch_job", fetches)
    recorder = Recorder(expected=1)
    async with worker_on(own_database_url, recorder):
        await fetches.settled(made=FETCHERS)  # the first round: the worker looked for a backlog
        made, fetches.most_in_flight = fetches.made, 0
        (single,) = await enqueue(1)
        await asyncio.wait_for(recorder.all_done.wait(), timeout=30)
        await fetches.settled(made=made + 1)
        assert fetches.made - made == 2  # its own and the empty one, as the stock worker
        assert fetches.most_in_flight == 1

        recorder.expect(RUNS)
        burst = await enqueue(RUNS)
        await asyncio.wait_for(recorder.all_done.wait(), timeout=30)
    assert recorder.executed == Counter(dict.fromkeys([single, *burst], 1))
    assert fetches.most_in_flight == FETCHERS
