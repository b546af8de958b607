"""A run's stored events: every emitted event is stored once, in order, even when the run ends
while a batch is still being written; a new attempt of a run never reuses a number."""

import asyncio
import uuid
from typing import Any

from psycopg import AsyncConnection

from server.runs.events import ATTEMPT_SPAN, EventWriter, events_after, first_seq
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
        writer = EventWriter(pool, run_id, 1)
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
    first = EventWriter(pool, run_id, 1)
    for bar in range(5):
        first.emit("custom", {"bar": bar})
    await first.close()  # 6-8 were sent too, then lost with the crash
    second_start = await first_seq(pool, run_id, 2)
    assert second_start == ATTEMPT_SPAN + 1
    second = EventWriter(pool, run_id, second_start)
    second.emit("metadata", {"attempt": 2})
    second.emit("end", None)
    await second.close()
    rejoined = await events_after(pool, run_id, 8)  # the client saw up to 8
    seen = [(e["seq"] - ATTEMPT_SPAN, e["event"]) for e in rejoined]
    assert seen == [(1, "metadata"), (2, "end")]
    assert await first_seq(pool, run_id, 3) == 2 * ATTEMPT_SPAN + 1
