"""The Postgres checkpointer, riding out database restarts.

With `durability="async"` LangGraph saves each checkpoint in the background, chained after the
previous save, and keeps running steps meanwhile: one failed save fails every later save, and the
run goes on without checkpoints until it ends. A restart would then make a resume replay every
step since the last saved checkpoint, against a ledger that already holds their fills. Retrying
saves and reads while the database is away (they are upserts, safe to repeat) keeps the saved
checkpoints in step with the ledger, so a resume replays at most the step that was interrupted.

Over a pool it also takes no process-wide lock: `AsyncPostgresSaver` serializes every checkpoint
operation of every run in the process behind one `asyncio.Lock`, which a single connection needs
and a pool does not (each operation gets its own connection). LangGraph already orders one run's
saves (each waits for the previous), so runs only stop waiting on each other.

And it saves in fewer statements: the parent sends a checkpoint as one INSERT per blob plus one
for the checkpoint, and a task's writes as one INSERT per write, each batch pipelined, after
serializing them in a worker thread. Here a batch of checkpoints with their blobs and writes is
one statement (a data-modifying CTE over `unnest` arrays), serialized in the event loop (a
session's values are small). Same rows, same conflict rules.

A step's ordinary writes wait for the next checkpoint. LangGraph saves a task's writes as soon as
the task ends (so that a step whose other tasks fail need not run it again) and, moments later,
the step's checkpoint, which already holds their effect; with `durability="async"` or `"sync"`
nothing waits for the writes themselves. `aput_writes` keeps ordinary writes in memory and
returns; the next checkpoint's statement saves them (if none comes: before a read of the thread,
beside special writes, or FLUSH_AFTER_S later).

While a run of this process holds the thread with `durability="async"` (`batched_saves`: the
run executor and `tradegraph backtest`), its checkpoints wait too, and a batch goes in one
statement: when the run stops however it stops, before any read of the thread, beside special
writes (errors, interrupts, resume values, saved at once), or FLUSH_AFTER_S after the batch began.
A one-bar session is one statement instead of six; a long one, about one a second. A crash loses
what waited, as it loses a checkpoint save still in flight with "async": the run continues from
the last saved checkpoint and replays the steps after it, and every node is safe to re-run
(`execute` books each order once). Another process reading the thread meanwhile sees it up to
FLUSH_AFTER_S behind; this process flushes before its reads, and a run's end saves everything
before the run is marked finished.
"""

import asyncio
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from graph.last_saved import LastSaved
from tradegraph.database import ASYNC_COMMIT, retrying

log = logging.getLogger(__name__)

SAVE_BATCH = f"""
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, b.channel, b.version, b.type, b.blob
    FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[], %(blobs)b::bytea[])
         AS b (channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
), writes AS (
    INSERT INTO checkpoint_writes
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, w.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel,
           w.type, w.blob
    FROM unnest(%(w_checkpoint_ids)b::text[], %(w_task_ids)b::text[], %(w_task_paths)b::text[],
                %(w_idxs)b::integer[], %(w_channels)b::text[], %(w_types)b::text[], %(w_blobs)b::bytea[])
         AS w (checkpoint_id, task_id, task_path, idx, channel, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
)
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT %(thread_id)s, %(checkpoint_ns)s, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, c.metadata
FROM jsonb_to_recordset(%(checkpoints)s)
     AS c (checkpoint_id text, parent_checkpoint_id text, checkpoint jsonb, metadata jsonb)
CROSS JOIN {ASYNC_COMMIT}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
"""
"""A batch (checkpoints, their blobs, ordinary writes) of one thread and namespace as one statement:
`AsyncPostgresSaver`'s blob, checkpoint and write upserts with their conflict rules, committed
asynchronously (see `ASYNC_COMMIT`). The arrays travel in binary (`%b`): psycopg's text format
quotes each element through a regular expression and spells every blob out in hex, 135 us for a
checkpoint's nine channels against 28 us. The checkpoints travel as one JSON array."""
INSERT_WRITES = f"""
INSERT INTO checkpoint_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s,
       w.idx, w.channel, w.type, w.blob
FROM unnest(%(idxs)b::integer[], %(channels)b::text[], %(types)b::text[], %(blobs)b::bytea[])
     AS w (idx, channel, type, blob)
CROSS JOIN {ASYNC_COMMIT}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO
"""
UPSERT_WRITES = (
    INSERT_WRITES + "UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
)
"""Special writes (errors, interrupts, resume values) replace an earlier write at their index."""
INSERT_NEW_WRITES = INSERT_WRITES + "NOTHING"
"""Other writes that cannot wait (beside special ones of the same task) keep the first attempt's."""
FLUSH_AFTER_S = 1.0
"""Longest that a batch waits in memory before it is saved on its own."""

WriteKey = tuple[str, str, str]
"""Thread id, checkpoint namespace and checkpoint id: the checkpoint that writes belong to."""
BatchKey = tuple[str, str]
"""Thread id and checkpoint namespace: what one batch statement saves for."""
WRITE_COLUMNS = {
    "w_checkpoint_ids": 2,
    "w_task_ids": 3,
    "w_task_paths": 4,
    "w_idxs": 5,
    "w_channels": 6,
    "w_types": 7,
    "w_blobs": 8,
}
"""Where each column of a dumped write row (thread, ns, checkpoint, task, path, idx, ...) is."""


@dataclass
class Batch:
    """What waits in memory for one statement: checkpoints (a checkpoint saved again replaces its
    earlier save), the blobs of their channel values, and ordinary writes."""

    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """By channel and version: two checkpoints of a batch may share a blob."""
    writes: list[tuple[Any, ...]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None

    def params(self, key: BatchKey) -> dict[str, Any]:
        """SAVE_BATCH's parameters."""
        thread_id, checkpoint_ns = key
        return {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoints": Jsonb(list(self.checkpoints.values())),
            **_columns(list(self.blobs.values()), channels=2, versions=3, types=4, blobs=5),
            **_columns(self.writes, **WRITE_COLUMNS),
        }


class ResilientPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose reads and writes retry while the database is unreachable, whose
    operations over a pool run concurrently, and whose saves go in batches (writes with the next
    checkpoint; a held thread's checkpoints with each other)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batches: dict[BatchKey, Batch] = {}
        self._batched: set[str] = set()
        """Threads whose checkpoints wait in their batch too (a run of this process holds them)."""
        self._locks: weakref.WeakValueDictionary[BatchKey, asyncio.Lock] = weakref.WeakValueDictionary()
        """One save at a time per batch key, in order: a read after `flush` sees every save before it."""
        self._saving: set[asyncio.Future[None]] = set()  # late saves in flight (kept from the GC)
        self.last_saved = LastSaved(self.serde)
        """The last checkpoint saved for the threads whose runs the executor of this process holds."""

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        """A cursor on a connection of its own from the pool, without the instance-wide lock.

        The same cursor as the parent's otherwise (binary, dict rows; a pipeline when asked): a
        single connection or a shared pipeline keeps the parent's locked path.
        """
        if self.pipe is not None or not isinstance(self.conn, AsyncConnectionPool):
            async with super()._cursor(pipeline=pipeline) as cur:
                yield cur
            return
        async with self.conn.connection() as conn:
            if pipeline and self.supports_pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            elif pipeline:
                async with conn.transaction(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id, checkpoint_ns = str(configurable["thread_id"]), configurable["checkpoint_ns"]
        inline = dict(checkpoint["channel_values"])
        blob_values: dict[str, Any] = {}
        for channel, value in checkpoint["channel_values"].items():  # as the parent splits them
            if isinstance(value, _DeltaSnapshot):
                blob_values[channel] = inline.pop(channel)
                inline[channel] = True
            elif not (value is None or isinstance(value, (str, int, float, bool))):
                blob_values[channel] = inline.pop(channel)
        versions = {k: v for k, v in new_versions.items() if k in blob_values}
        parent_id = configurable.get("checkpoint_id")
        stored = {**checkpoint, "channel_values": inline}
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        key = (thread_id, checkpoint_ns)
        batch = self._batch(key)
        batch.checkpoints[checkpoint["id"]] = {
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": parent_id,
            "checkpoint": stored,
            "metadata": stored_metadata,
        }
        for row in self._dump_blobs(thread_id, checkpoint_ns, blob_values, versions):
            batch.blobs[(row[2], row[3])] = row
        if thread_id not in self._batched or checkpoint_ns:
            await self._save(key)  # with the writes that waited for it
        saved = _config(thread_id, checkpoint_ns, checkpoint["id"])
        parent = _config(thread_id, checkpoint_ns, parent_id) if parent_id else None
        self.last_saved.saved(saved, stored, blob_values, dict(stored_metadata), parent)
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        configurable = config["configurable"]
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        ordinary = not any(channel in WRITES_IDX_MAP for channel, _ in writes)
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        key: BatchKey = (str(configurable["thread_id"]), configurable["checkpoint_ns"])
        self.last_saved.wrote(rows, replace=special)
        if ordinary:
            self._batch(key).writes.extend(rows)  # saved with the next checkpoint
            return
        await self._save(key)  # the step pauses or fails: what waited goes first
        if special:  # one statement may not update a row twice: the last write at an index wins
            rows = list({row[5]: row for row in rows}.values())
        params = _task_writes(_write_key(configurable), task_id, task_path, rows)
        query = UPSERT_WRITES if special else INSERT_NEW_WRITES
        await retrying(lambda: self._execute(query, params), what="checkpoint writes")

    def batch_saves(self, thread_id: str) -> None:
        """A run of this process holds the thread (with `durability="async"`): until `release`, its
        checkpoints wait in memory with its writes, and each batch is saved in one statement."""
        self._batched.add(str(thread_id))

    async def release(self, thread_id: str) -> None:
        """The run holding the thread stopped, however it stopped: save what waits, batch no more."""
        self._batched.discard(str(thread_id))
        await self.flush(thread_id)

    async def flush(self, thread_id: str) -> None:
        """Save what waits for the thread now (the thread is about to be read, or a run stopped)."""
        for key in self._keys_of(thread_id):
            await self._save(key)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._drop(thread_id)  # a deleted thread keeps no row, not even a late save
        await super().adelete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self._drop(thread_id)
            else:
                await self.flush(thread_id)  # the latest checkpoint and its writes are kept
        await super().aprune(thread_ids, strategy=strategy)

    def _keys_of(self, thread_id: str) -> list[BatchKey]:
        """The thread's batch keys with something waiting or being saved."""
        return [key for key in {*self._batches, *self._locks} if key[0] == str(thread_id)]

    async def _drop(self, thread_id: str) -> None:
        """Forget what waits for the thread (it is being deleted), after any save under way."""
        for key in self._keys_of(thread_id):
            async with self._lock(key):
                self._take(key)

    def _batch(self, key: BatchKey) -> Batch:
        """The batch waiting for `key`; a new one is saved after FLUSH_AFTER_S at the latest."""
        if (batch := self._batches.get(key)) is None:
            batch = self._batches[key] = Batch()
            batch.timer = asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self._save_later, key)
        return batch

    def _take(self, key: BatchKey) -> Batch | None:
        """The batch waiting for `key`, no longer waiting."""
        batch = self._batches.pop(key, None)
        if batch is not None and batch.timer is not None:
            batch.timer.cancel()
        return batch

    def _lock(self, key: BatchKey) -> asyncio.Lock:
        if (lock := self._locks.get(key)) is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _save_later(self, key: BatchKey) -> None:
        """Save a batch that waited FLUSH_AFTER_S, in the background."""
        saving = asyncio.ensure_future(self._save_late(key))
        self._saving.add(saving)
        saving.add_done_callback(self._saving.discard)

    async def _save_late(self, key: BatchKey) -> None:
        try:
            await self._save(key)
        except Exception:
            log.exception("checkpoints and writes of %s not saved", key)

    async def _save(self, key: BatchKey) -> None:
        """Save what waits for `key` in one statement, after any save of `key` already under way."""
        async with self._lock(key):
            if (batch := self._take(key)) is None:
                return
            params = batch.params(key)
            await retrying(functools.partial(self._execute, SAVE_BATCH, params), what="checkpoint save")

    async def _execute(self, query: str, params: dict[str, Any]) -> None:
        async with self._cursor() as cur:
            await cur.execute(query, params)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if (kept := self.last_saved.tuple_of(config)) is not None:
            return kept  # the final state of a run of this process, as it just saved it
        await self.flush(config["configurable"]["thread_id"])
        parent = super().aget_tuple
        return await retrying(lambda: parent(config), what="checkpoint read")

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if config is not None:
            await self.flush(config["configurable"]["thread_id"])
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item


@asynccontextmanager
async def batched_saves(checkpointer: object, thread_id: str, *, durability: str) -> AsyncIterator[None]:
    """Run a session of `thread_id` in the block: with `durability="async"` and our saver, its
    checkpoints and writes wait in memory and are saved in batches; what waits is saved when the
    block ends, however it ends (shielded from cancellation)."""
    if not isinstance(checkpointer, ResilientPostgresSaver):
        yield
        return
    if durability == "async":
        checkpointer.batch_saves(thread_id)
    try:
        yield
    finally:
        await asyncio.shield(checkpointer.release(thread_id))


def _write_key(configurable: dict[str, Any]) -> WriteKey:
    """The checkpoint a config names: thread id, namespace and checkpoint id."""
    return (str(configurable["thread_id"]), configurable["checkpoint_ns"], str(configurable["checkpoint_id"]))


def _task_writes(
    key: WriteKey, task_id: str, task_path: str, rows: Sequence[tuple[Any, ...]]
) -> dict[str, Any]:
    """The parameters of INSERT_NEW_WRITES / UPSERT_WRITES for one task's dumped write rows."""
    thread_id, checkpoint_ns, checkpoint_id = key
    return {
        "thread_id": thread_id,
        "checkpoint_ns": checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "task_id": task_id,
        "task_path": task_path,
        **_columns(rows, idxs=5, channels=6, types=7, blobs=8),
    }


def _config(thread_id: str, ns: str, id_: str) -> RunnableConfig:
    """A checkpoint's config as the saver returns it."""
    return {"configurable": {"thread_id": str(thread_id), "checkpoint_ns": ns, "checkpoint_id": id_}}


def _columns(rows: Sequence[Sequence[Any]], **positions: int) -> dict[str, list[Any]]:
    """Rows as one array per named column (the column at each position), for `unnest`."""
    return {name: [row[i] for row in rows] for name, i in positions.items()}
