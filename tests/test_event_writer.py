"""A run's stored events: every emitted event is stored once, in order, even when the run ends
while a batch is still being written; a new attempt of a run never reuses a number."""

import asyncio
import uuid
from typing import Any

from psycopg import AsyncConnection

from server.runs.events import ATTEMPT_SPAN, EventStore, EventWriter, events_after, first_seq
from tradegraph.accounts import create_user

RUN_OF_THREAD = """
WITH thread AS (INSERT INTO threads (thread_id, user_id) VALUES (%(thread)s, %(user)s))
INSERT INTO runs (run_id, thread_id, user_id, assistant_id) VALUES (%(run)s, %(thread)s, %(user)s, %(run)s)
"""


async def test_closing_waits_for_the_batch_in_flight(database_url: str, pool: Any) -> None:
    """The first batch is held up by another transaction writing its sequence number; the run ends
    meanwhile. Both events are stored, in order (a batch cancelled in flight was lost, and a
    follower that then saw the later event skipped it)."""
    run_id = str(uuid.uuid4())
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"events-{run_id[:8]}")
        await conn.execute(RUN_OF_THREAD, {"thread": str(uuid.uuid4()), "user": user.id, "run": run_id})
    async with await AsyncConnection.connect(database_url) as blocker:
        await blocker.execute(  # uncommitted: the writer's insert of seq 1 waits for this transaction
            "INSERT INTO run_events (run_id, seq, event, data) VALUES (%s, 1, 'probe', 'null')", (run_id,)
        )
        writer = EventWriter(EventStore(pool), run_id, 1)
        writer.emit("custom", {"type": "verdict"})
        await wait_for_insert_blocked(pool, run_id)
        writer.emit("end", None)
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0.3)
        assert not closing.done()  # still waiting for the batch in flight
        await blocker.rollback()
    await asyncio.wait_for(closing, timeout=30)
    stored = await events_after(pool, run_id, 0)
    assert [(e["seq"], e["event"]) for e in stored] == [(1, "custom"), (2, "end")]
    assert stored[0]["data"] == {"type": "verdict"}


async def wait_for_insert_blocked(pool: Any, run_id: str) -> None:
    """Until a session waits on a lock while inserting into run_events."""
    async with pool.connection() as conn:
        for _ in range(200):
            row = await (
                await conn.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                    "AND query LIKE '%%INSERT INTO run_events%%'"
                )
            ).fetchone()
            if row["n"]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"the writer's first batch for run {run_id} never started")


async def test_a_new_attempt_numbers_its_events_past_anything_an_earlier_one_sent(pool: Any) -> None:
    """Attempt 1 sent events 1-8, but a database crash lost 6-8 (asynchronous commit). The run
    moves to another worker: its events must not take 6-8, or a client that saw 8 and rejoins
    would skip them."""
    run_id = str(uuid.uuid4())
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"attempts-{run_id[:8]}")
        await conn.execute(RUN_OF_THREAD, {"thread": str(uuid.uuid4()), "user": user.id, "run": run_id})
    assert await first_seq(pool, run_id, 1) == 1
    first = EventWriter(EventStore(pool), run_id, 1)
    for bar in range(5):
        first.emit("custom", {"bar": bar})
    await first.close()  # 6-8 were sent too, then lost with the crash
    second_start = await first_seq(pool, run_id, 2)
    assert second_start == ATTEMPT_SPAN + 1
    second = EventWriter(EventStore(pool), run_id, second_start)
    second.emit("metadata", {"attempt": 2})
    second.emit("end", None)
    await second.close()
    rejoined = await events_after(pool, run_id, 8)  # the client saw up to 8
    seen = [(e["seq"] - ATTEMPT_SPAN, e["event"]) for e in rejoined]
    assert seen == [(1, "metadata"), (2, "end")]
    assert await first_seq(pool, run_id, 3) == 2 * ATTEMPT_SPAN + 1


class CountedStore(EventStore):
    """The process's event store, recording how many runs' batches each statement took."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self.groups: list[int] = []

    async def _insert(self, group: Any) -> None:
        self.groups.append(len(group))
        await super()._insert(group)


async def runs_of_a_user(pool: Any, count: int) -> list[str]:
    runs = [str(uuid.uuid4()) for _ in range(count)]
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"group-{runs[0][:8]}")
        for run_id in runs:
            await conn.execute(RUN_OF_THREAD, {"thread": str(uuid.uuid4()), "user": user.id, "run": run_id})
    return runs


async def test_batches_of_several_runs_go_in_one_statement_and_a_bad_one_fails_alone(pool: Any) -> None:
    """Batches handed over while a statement is in flight go together in the next one (100
    streaming runs write one statement per round trip, not one each); a batch that fails for its
    own reason (here: a run that does not exist) fails alone, and the others are stored."""
    first, second, third = await runs_of_a_user(pool, 3)
    store = CountedStore(pool)
    in_flight = asyncio.create_task(store.store(first, [{"seq": 1, "event": "metadata", "data": {"n": 1}}]))
    await asyncio.sleep(0)  # the first statement is under way
    together = [
        asyncio.create_task(store.store(run_id, [{"seq": seq, "event": "custom", "data": {"n": seq}}]))
        for run_id, seq in ((second, 1), (third, 1), (third, 2))
    ]
    await asyncio.gather(in_flight, *together)
    assert store.groups == [1, 3]
    assert [e["seq"] for e in await events_after(pool, third, 0)] == [1, 2]
    assert [e["data"] for e in await events_after(pool, second, 0)] == [{"n": 1}]

    store.groups.clear()
    unknown = str(uuid.uuid4())  # no such run: its events break the foreign key
    in_flight = asyncio.create_task(store.store(first, [{"seq": 2, "event": "custom", "data": None}]))
    await asyncio.sleep(0)
    bad = asyncio.create_task(store.store(unknown, [{"seq": 1, "event": "custom", "data": None}]))
    good = asyncio.create_task(store.store(second, [{"seq": 2, "event": "end", "data": None}]))
    await in_flight
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], Exception) and results[1] is None
    assert store.groups == [1, 2, 1, 1]  # the pair failed together, then each went alone
    assert [e["event"] for e in await events_after(pool, second, 0)] == ["custom", "end"]
