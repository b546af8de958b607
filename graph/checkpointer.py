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
serializing them in a worker thread. Here a checkpoint with its blobs is one statement (a
data-modifying CTE over `unnest` arrays) and a task's writes another, serialized in the event loop
(a session's values are small). Same rows, same conflict rules.

And a step's ordinary writes travel with the next checkpoint. LangGraph saves a task's writes as
soon as the task ends (so that a step whose other tasks fail need not run it again) and, moments
later, the step's checkpoint, which already holds their effect; with `durability="async"` or
`"sync"` nothing waits for the writes themselves. `aput_writes` keeps ordinary writes in memory
and returns; the checkpoint whose parent they belong to saves them in its own statement (one
statement per step instead of two). Writes no checkpoint takes are saved on their own: by `flush`
(the run executor calls it when a run stops, however it stops), before any read of the thread,
beside special writes (errors, interrupts, resume values, saved at once) for the same checkpoint,
or after FLUSH_AFTER_S at the latest. A crash loses them as it loses a checkpoint save still in
flight: the step runs again, and every node is safe to re-run.
"""

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
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

UPSERT_CHECKPOINT_WITH_BLOBS = f"""
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, b.channel, b.version, b.type, b.blob
    FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[], %(blobs)b::bytea[])
         AS b (channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
), writes AS (
    INSERT INTO checkpoint_writes
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, %(parent_id)s, w.task_id, w.task_path, w.idx, w.channel,
           w.type, w.blob
    FROM unnest(%(w_task_ids)b::text[], %(w_task_paths)b::text[], %(w_idxs)b::integer[],
                %(w_channels)b::text[], %(w_types)b::text[], %(w_blobs)b::bytea[])
         AS w (task_id, task_path, idx, channel, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
)
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_id)s, %(checkpoint)s, %(metadata)s
FROM {ASYNC_COMMIT}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
"""
"""`AsyncPostgresSaver`'s blob and checkpoint upserts as one statement (committed asynchronously,
like the writes: see `ASYNC_COMMIT`), with the parent checkpoint's held ordinary writes
(`INSERT_NEW_WRITES`'s rule). The arrays travel in binary (`%b`): psycopg's text format quotes each
element through a regular expression and spells every blob out in hex, 135 us for a checkpoint's
nine channels against 28 us."""
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
"""Ordinary writes keep the first attempt's."""
FLUSH_AFTER_S = 1.0
"""Longest that ordinary writes wait in memory for the next checkpoint to take them along."""

WriteKey = tuple[str, str, str]
"""Thread id, checkpoint namespace and checkpoint id: the checkpoint that writes belong to."""
WRITE_COLUMNS = {"w_task_ids": 3, "w_task_paths": 4, "w_idxs": 5, "w_channels": 6, "w_types": 7, "w_blobs": 8}
"""Where each column of a dumped write row (thread, ns, checkpoint, task, path, idx, ...) is."""


class ResilientPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose reads and writes retry while the database is unreachable, whose
    operations over a pool run concurrently, and whose steps' writes ride with their checkpoints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[WriteKey, list[tuple[Any, ...]]] = {}
        self._timers: dict[WriteKey, asyncio.TimerHandle] = {}
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
        thread_id, checkpoint_ns = configurable["thread_id"], configurable["checkpoint_ns"]
        inline = dict(checkpoint["channel_values"])
        blob_values: dict[str, Any] = {}
        for channel, value in checkpoint["channel_values"].items():  # as the parent splits them
            if isinstance(value, _DeltaSnapshot):
                blob_values[channel] = inline.pop(channel)
                inline[channel] = True
            elif not (value is None or isinstance(value, (str, int, float, bool))):
                blob_values[channel] = inline.pop(channel)
        versions = {k: v for k, v in new_versions.items() if k in blob_values}
        blobs = self._dump_blobs(thread_id, checkpoint_ns, blob_values, versions)
        parent_id = configurable.get("checkpoint_id")
        held = self._take(_write_key(configurable)) if parent_id else []  # writes of the parent
        stored = {**checkpoint, "channel_values": inline}
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        params = {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
            "parent_id": parent_id,
            "checkpoint": Jsonb(stored),
            "metadata": Jsonb(stored_metadata),
            **_columns(blobs, channels=2, versions=3, types=4, blobs=5),
            **_columns(held, **WRITE_COLUMNS),
        }
        await retrying(lambda: self._execute(UPSERT_CHECKPOINT_WITH_BLOBS, params), what="checkpoint save")
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
        key = _write_key(configurable)
        self.last_saved.wrote(rows, replace=special)
        if ordinary:
            self._hold(key, rows)  # saved with the next checkpoint
            return
        await self._save_held(key)  # the step pauses or fails: its other tasks' writes go now
        if special:  # one statement may not update a row twice: the last write at an index wins
            rows = list({row[5]: row for row in rows}.values())
        params = _task_writes(key, task_id, task_path, rows)
        query = UPSERT_WRITES if special else INSERT_NEW_WRITES
        await retrying(lambda: self._execute(query, params), what="checkpoint writes")

    async def flush(self, thread_id: str) -> None:
        """Save the thread's held writes now (a run stopped, or the thread is about to be read)."""
        for key in self._keys_of(thread_id):
            await self._save_held(key)

    async def adelete_thread(self, thread_id: str) -> None:
        self._drop(thread_id)  # a deleted thread keeps no row, not even a write saved late
        await super().adelete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        for thread_id in thread_ids:
            if strategy == "delete":
                self._drop(thread_id)
            else:
                await self.flush(thread_id)  # the writes of the latest checkpoint are kept
        await super().aprune(thread_ids, strategy=strategy)

    def _keys_of(self, thread_id: str) -> list[WriteKey]:
        return [key for key in self._held if key[0] == str(thread_id)]

    def _drop(self, thread_id: str) -> None:
        """Forget the thread's held writes (it is being deleted)."""
        for key in self._keys_of(thread_id):
            self._take(key)

    def _hold(self, key: WriteKey, rows: Sequence[tuple[Any, ...]]) -> None:
        self._held.setdefault(key, []).extend(rows)
        if key not in self._timers:
            self._timers[key] = asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self._save_later, key)

    def _save_later(self, key: WriteKey) -> None:
        """Save the writes no checkpoint took in time, in the background."""
        saving = asyncio.ensure_future(self._save_late(key))
        self._saving.add(saving)
        saving.add_done_callback(self._saving.discard)

    async def _save_late(self, key: WriteKey) -> None:
        try:
            await self._save_held(key)
        except Exception:
            log.exception("checkpoint writes of %s not saved", key)

    def _take(self, key: WriteKey) -> list[tuple[Any, ...]]:
        """The writes held for `key`, no longer held."""
        if timer := self._timers.pop(key, None):
            timer.cancel()
        return self._held.pop(key, [])

    async def _save_held(self, key: WriteKey) -> None:
        """Save the writes held for `key` on their own (task by task: each keeps its own path)."""
        tasks: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for row in self._take(key):
            tasks.setdefault((row[3], row[4]), []).append(row)
        for (task_id, task_path), rows in tasks.items():
            params = _task_writes(key, task_id, task_path, rows)
            save = functools.partial(self._execute, INSERT_NEW_WRITES, params)
            await retrying(save, what="checkpoint writes")

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


async def save_held_writes(checkpointer: object, thread_id: str) -> None:
    """A run of `thread_id` stopped: save the writes `checkpointer` holds for it, if it is ours."""
    if isinstance(checkpointer, ResilientPostgresSaver):
        await checkpointer.flush(thread_id)


def _write_key(configurable: dict[str, Any]) -> WriteKey:
    """The checkpoint a config names, as the key of the writes held for it."""
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
