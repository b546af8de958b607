"""Following a run in the process that runs it: stored batches are handed over, not read back.

The writer hands each committed batch to this process's waiters; a stream follows from them and
reads the database only for what another process stored or for a change of the run itself. A
wait for the run's end reads the run on status changes only, not on every batch of events.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from graph.builder import GRAPH_ID
from server.runs import follow
from server.runs.create import create_run
from server.runs.events import EventStore, EventWriter, events_after
from server.runs.notifier import Notifier, Wake, events_payload, notify
from server.schemas import RunCreate
from server.services import RunServices
from server.store import runs as run_store
from server.store import threads as thread_store
from tests.support.accounts import owner_and_model
from tradegraph.accounts import User, create_user
from tradegraph.database import make_pool

RUN_OF_THREAD = """
WITH thread AS (INSERT INTO threads (thread_id, user_id) VALUES (%(thread)s, %(user)s))
INSERT INTO runs (run_id, thread_id, user_id, assistant_id, status)
VALUES (%(run)s, %(thread)s, %(user)s, %(run)s, 'running')
"""
FINISH = "UPDATE runs SET status = 'success' WHERE run_id = %s"
NOTIFY_BATCH = "SELECT pg_notify('tradegraph_runs', %s)"


@pytest.fixture
async def services(database_url: str, pool: Any) -> AsyncIterator[RunServices]:
    """The run services of an API-only process (no run slots): pool, notifier, census."""
    started = await RunServices.start(database_url, pool, workers=0)
    yield started
    await started.stop()


@pytest.fixture
async def run_id(pool: Any) -> str:
    """A running run of a new thread."""
    run_id = str(uuid.uuid4())
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"local-{run_id[:8]}")
        await conn.execute(RUN_OF_THREAD, {"thread": str(uuid.uuid4()), "user": user.id, "run": run_id})
    return run_id


class Counted:
    """Wraps a real database read and counts its calls."""

    def __init__(self, read: Any) -> None:
        self.read, self.calls = read, 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.read(*args, **kwargs)


async def follow_to_the_end(services: RunServices, run_id: str) -> list[tuple[str, str, Any]]:
    batches = [batch async for batch in follow.run_events(services, uuid.UUID(run_id))]
    return [(e.id, e.event, e.data) for batch in batches for e in batch]


async def write_a_run(writer: EventWriter) -> None:
    """Five batches, each stored before the next is emitted, then the end."""
    writer.emit("metadata", {"run_id": "r"})
    for bar in range(5):
        writer.emit("custom", {"type": "equity", "bar": bar})
        await asyncio.sleep(0.1)  # past the batch window: one stored batch per bar
    writer.emit("end", None)
    await writer.close()


async def until(predicate: Any) -> None:
    for _ in range(300):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def follow_while_written(
    services: RunServices, run_id: str, writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, str, Any]], int]:
    """Follow the run from before its first event while `writer` writes it: what the stream sent,
    and how many times it read the run's events from the database."""
    reads = Counted(events_after)
    monkeypatch.setattr(follow, "events_after", reads)
    stream = asyncio.create_task(follow_to_the_end(services, run_id))
    await until(lambda: reads.calls == 1)  # the first read found nothing yet
    await write_a_run(writer)
    return await asyncio.wait_for(stream, timeout=30), reads.calls


async def test_a_stream_in_the_writers_process_reads_the_events_once_and_misses_nothing(
    services: RunServices, run_id: str, pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = EventWriter(EventStore(pool), run_id, 1, services.notifier)
    sent, reads = await follow_while_written(services, run_id, writer, monkeypatch)
    assert reads == 1  # every batch came with its wake-up
    stored = await events_after(pool, run_id, 0)
    assert [(id_, event) for id_, event, _ in sent] == [(str(e["seq"]), e["event"]) for e in stored]
    assert [e["event"] for e in stored] == ["metadata", *["custom"] * 5, "end"]
    assert json.loads(sent[3][2]) == {"type": "equity", "bar": 2}


async def test_a_stream_in_another_process_reads_what_was_stored(
    services: RunServices, run_id: str, pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer hands its batches to nobody here (as in another process): NOTIFY wakes the stream."""
    sent, reads = await follow_while_written(
        services, run_id, EventWriter(EventStore(pool), run_id, 1), monkeypatch
    )
    assert [id_ for id_, _, _ in sent] == [str(seq) for seq in range(1, 8)]
    assert reads > 1


async def test_a_wait_reads_the_run_when_its_status_changes_not_on_each_batch(
    services: RunServices, run_id: str, pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = Counted(run_store.get_run)
    monkeypatch.setattr(run_store, "get_run", reads)
    waiting = asyncio.create_task(follow.wait_until_done(services, uuid.UUID(run_id)))
    await until(lambda: reads.calls == 1)
    writer = EventWriter(EventStore(pool), run_id, 1, services.notifier)
    for bar in range(3):
        writer.emit("custom", {"bar": bar})
        await asyncio.sleep(0.1)
    await writer.close()
    await asyncio.sleep(0.3)  # the batches' NOTIFYs have arrived too
    assert not waiting.done() and reads.calls == 1
    async with pool.connection() as conn:
        await conn.execute(FINISH, (run_id,))
        await notify(conn, run_id)
    run = await asyncio.wait_for(waiting, timeout=5)  # well before the periodic check
    assert run is not None and run["status"] == "success"
    assert reads.calls == 2


def stored(*seqs: int) -> list[Any]:
    return [{"seq": seq, "event": "custom", "data": None} for seq in seqs]


async def test_what_a_wake_up_hands_over_and_when_it_says_read_the_database() -> None:
    wake = Wake()
    assert wake.take_after(0) is None  # nothing arrived (a timed-out wait): read
    wake.hand(stored(1, 2))
    wake.announce(2)  # the batch's own NOTIFY, here before the reader looked
    assert [e["seq"] for e in wake.take_after(0) or []] == [1, 2]
    wake.announce(2)  # ... or after it: nothing new
    assert wake.take_after(2) == []
    wake.announce(4)  # stored by another process
    assert wake.take_after(2) is None
    wake.hand(stored(6))  # not contiguous with what the reader has
    assert wake.take_after(4) is None
    wake.hand(stored(7))
    wake.announce(None)  # the run's status changed
    assert wake.take_after(6) is None
    assert not wake.take_change()
    wake.announce(None)
    assert wake.take_change()


async def test_a_batch_this_process_is_storing_wakes_nobody_by_its_notify(database_url: str) -> None:
    """The NOTIFY of a batch this process stores may come before the hand-over: it must not send
    the waiter to the database. A NOTIFY past what this process stores (another process) must."""
    notifier = Notifier(database_url)
    await notifier.start()
    try:
        run_id = str(uuid.uuid4())
        with notifier.waiter(run_id) as wake:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                notifier.storing(run_id, 9)
                await conn.execute(NOTIFY_BATCH, (events_payload(run_id, 9),))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=0.5)
                await conn.execute(NOTIFY_BATCH, (events_payload(run_id, 12),))
                await asyncio.wait_for(wake.wait(), timeout=10)
                assert wake.take_after(9) is None  # 10-12 were stored elsewhere: read them
                notifier.stopped_storing(run_id)
                await conn.execute(NOTIFY_BATCH, (events_payload(run_id, 9),))
                await asyncio.wait_for(wake.wait(), timeout=10)
                assert wake.take_after(12) == []
    finally:
        await notifier.stop()


ONE_BAR = {"mode": "daily", "start": "2012-01-03", "end": "2012-01-03", "symbols": ["AAPL"]}


async def test_a_run_created_and_executed_here_is_followed_without_reading_it_back(
    own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait and a stream of runs that the request created (the notifier's mark taken before) and
    this process executed: no read of the run or its events; the run and its events are handed
    over, and they are what was stored. (A database of its own: no other test's queued run may
    take the one run slot, or the wait would read the run again after WAKE_EVERY_S.)"""
    run_reads, event_reads = Counted(run_store.get_run), Counted(events_after)
    monkeypatch.setattr(run_store, "get_run", run_reads)
    monkeypatch.setattr(follow, "events_after", event_reads)
    _, model = await owner_and_model(own_database_url)
    pool = make_pool(own_database_url, max_size=5)
    await pool.open()
    services = await RunServices.start(own_database_url, pool, workers=1)
    try:
        user = User(id=model["user_id"], name="local")
        body = RunCreate(assistant_id=GRAPH_ID, input={**ONE_BAR, "decider": "rule"})
        threads = [uuid.uuid4(), uuid.uuid4()]
        async with pool.connection() as conn:
            for thread_id in threads:
                await thread_store.create_thread(
                    conn, thread_id=thread_id, user_id=user.id, model_id=model["id"], metadata={}
                )

        mark = services.notifier.mark()
        waited = await create_run(services, threads[0], user, body)
        finished = await asyncio.wait_for(
            follow.wait_until_done(services, waited["run_id"], created=mark), timeout=30
        )
        mark = services.notifier.mark()
        streamed = await create_run(services, threads[1], user, body)
        batches = follow.run_events(services, streamed["run_id"], created=mark)
        sent = [(e.id, e.event, e.data) async for batch in batches for e in batch]
        assert (run_reads.calls, event_reads.calls) == (0, 0)

        async with pool.connection() as conn:
            stored_run = await run_store.get_run(conn, run_id=waited["run_id"])
        stored_events = await events_after(pool, str(streamed["run_id"]), 0)
    finally:
        await services.stop()
        await pool.close()
    assert finished is not None and stored_run is not None and finished["status"] == "success"
    assert {**finished, "result": None} == {**stored_run, "result": None}
    assert json.loads(json.dumps(finished["result"])) == stored_run["result"]
    assert stored_run["result"] and stored_run["result"]["done"] is True
    assert [(id_, event, json.loads(data)) for id_, event, data in sent] == [
        (str(e["seq"]), e["event"], e["data"]) for e in stored_events
    ]
    assert [e["event"] for e in stored_events][-1] == "end"
