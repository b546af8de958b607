"""The stored SSE events of runs: appended in batches by the executor, read by any stream."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from psycopg.types.json import Jsonb

from server.runs.notifier import CHANNEL, StoredEvent, events_payload
from server.serialization import to_jsonable
from server.store.runs import RunRow
from tradegraph.database import ASYNC_COMMIT, Pool, retrying

INSERT_EVENTS = f"""
WITH stored AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT e.run_id, e.seq, e.event, COALESCE(e.data, 'null')  -- a JSON null comes out as NULL
    FROM jsonb_to_recordset(%s::jsonb) AS e(run_id uuid, seq bigint, event text, data jsonb)
    ON CONFLICT (run_id, seq) DO NOTHING  -- a batch retried after a lost connection is stored once
    RETURNING 1
)
SELECT pg_notify(%s, p.payload), (SELECT count(*) FROM stored)
FROM unnest(%s::text[]) AS p (payload) CROSS JOIN {ASYNC_COMMIT}
"""
"""Batches of one or more runs as one statement, with one NOTIFY per batch. The events travel as one
JSON array: a third of the client CPU of a `jsonb[]` parameter, and less for PostgreSQL too
(measured with 10-event batches: 128 against 356 us per statement)."""
NEXT_SEQ = "SELECT COALESCE(max(seq), 0) + 1 AS next FROM run_events WHERE run_id = %s"
BATCH_WINDOW_S = 0.015
"""Events reach followers at most this late; a short run is stored in one write when it ends."""
EVENTS_PER_READ = 500
SELECT_AFTER = f"""
SELECT seq, event, data FROM run_events WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT {EVENTS_PER_READ}
"""


class LocalFeed(Protocol):
    """This process's followers of runs (`Notifier`): told of a batch before it is stored, so the
    batch's own NOTIFY need not wake them, and handed it once it is committed; the same for the
    run's final row (`finishing`, `finished`)."""

    def storing(self, run_id: str, last_seq: int) -> None: ...

    def deliver(self, run_id: str, events: Sequence[StoredEvent]) -> None: ...

    def stopped_storing(self, run_id: str) -> None: ...

    def finishing(self, run_id: str) -> None: ...

    def finished(self, run_id: str, run: RunRow | None) -> None: ...


ATTEMPT_SPAN = 1 << 32
"""Sequence numbers each attempt of a run may use: attempt k starts at (k - 1) * ATTEMPT_SPAN + 1 or
after the last stored event, whichever is later."""


async def first_seq(pool: Pool, run_id: str, attempt: int) -> int:
    """The sequence number of the first event of this attempt of a run.

    A new attempt never reuses a number an earlier one may have sent. Stored events commit
    asynchronously, so a database crash can lose the last ones after a stream has sent them;
    numbering on from the last stored event would give their numbers to new events, and a client
    rejoining after one of them would skip those. So each attempt starts in a range of its own.
    """
    if attempt <= 1:
        return 1
    async with pool.connection() as conn:
        row = await (await conn.execute(NEXT_SEQ, (run_id,))).fetchone()
    return max(int(row["next"]) if row else 1, (attempt - 1) * ATTEMPT_SPAN + 1)


async def events_after(pool: Pool, run_id: str, seq: int) -> list[StoredEvent]:
    """Stored events with a sequence number above `seq`, oldest first."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(SELECT_AFTER, (run_id, seq))).fetchall()
    return [cast(StoredEvent, dict(r)) for r in rows]


@dataclass
class _Batch:
    run_id: str
    events: list[StoredEvent]
    stored: asyncio.Future[None]


class EventStore:
    """Stores the event batches of every run of the process: batches handed over while a statement
    is in flight go together in the next one (group commit), so 100 streaming runs write a
    statement per round trip instead of one per run per BATCH_WINDOW_S, and a lone run's batch
    goes at once. A batch that fails for its own reason fails alone: the group is then stored
    batch by batch."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._waiting: list[_Batch] = []
        self._draining: asyncio.Task[None] | None = None

    async def store(self, run_id: str, events: list[StoredEvent]) -> None:
        """Store one run's batch (after the batches handed over before it) and notify its readers."""
        batch = _Batch(run_id, events, asyncio.get_running_loop().create_future())
        self._waiting.append(batch)
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name="run-events")
        await asyncio.shield(batch.stored)  # a waiter that leaves does not unstore it

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._insert(group)
            except Exception as exc:
                if len(group) == 1:
                    _settle(group, exc)
                    continue
                for batch in group:  # one run's bad batch must not fail the others'
                    try:
                        await self._insert([batch])
                    except Exception as own:
                        _settle([batch], own)
                    else:
                        _settle([batch], None)
            else:
                _settle(group, None)

    async def _insert(self, group: list[_Batch]) -> None:
        rows = [{**event, "run_id": batch.run_id} for batch in group for event in batch.events]
        payloads = [events_payload(batch.run_id, batch.events[-1]["seq"]) for batch in group]
        params = (Jsonb(rows), CHANNEL, payloads)

        async def insert() -> None:
            async with self._pool.connection() as conn:  # one atomic statement: store, then wake readers
                await conn.execute(INSERT_EVENTS, params)

        await retrying(insert, what=f"events of {len(group)} run(s)")


def _settle(group: list[_Batch], error: BaseException | None) -> None:
    for batch in group:
        if batch.stored.done():
            continue
        if error is None:
            batch.stored.set_result(None)
        else:
            batch.stored.set_exception(error)


class EventWriter:
    """Buffers a run's events and stores them in order through the process's `EventStore`, a batch
    at a time (each with its NOTIFY).

    Each stored batch is then handed to `feed`, so followers in this process need not read it back.
    """

    def __init__(self, store: EventStore, run_id: str, first_seq: int, feed: LocalFeed | None = None) -> None:
        self._store, self._run_id, self._seq, self._feed = store, run_id, first_seq, feed
        self._pending: list[StoredEvent] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._flush_loop(), name=f"events-{run_id}")

    def emit(self, event: str, data: Any) -> None:
        """Queue one event; it gets the next sequence number."""
        self._pending.append({"seq": self._seq, "event": event, "data": to_jsonable(data)})
        self._seq += 1
        self._wake.set()

    async def close(self) -> None:
        """Store everything still queued, after the batch being stored, if any.

        The batch in flight is never cancelled: its events would be lost while later ones are
        stored, and a follower reading after the last sequence number it saw would skip them.
        """
        self._closing = True
        self._wake.set()
        await self._task

    async def _flush_loop(self) -> None:
        try:
            while not (self._closing and not self._pending):
                await self._wake.wait()
                if not self._closing:
                    await asyncio.sleep(BATCH_WINDOW_S)  # gather what the next steps emit into one write
                self._wake.clear()
                await self._flush()
        finally:
            if self._feed is not None:
                self._feed.stopped_storing(self._run_id)

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self._feed is not None:
            self._feed.storing(self._run_id, batch[-1]["seq"])
        await self._store.store(self._run_id, batch)
        if self._feed is not None:
            self._feed.deliver(self._run_id, batch)
