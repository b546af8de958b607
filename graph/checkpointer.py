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
(a session's values are small). Same rows, same conflict rules; a step's two saves are two round
trips and two statements for PostgreSQL to plan instead of about seven.
"""

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

from tradegraph.database import ASYNC_COMMIT, retrying

UPSERT_CHECKPOINT_WITH_BLOBS = f"""
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, b.channel, b.version, b.type, b.blob
    FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[], %(blobs)b::bytea[])
         AS b (channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_id)s, %(checkpoint)s, %(metadata)s
FROM {ASYNC_COMMIT}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
"""
"""`AsyncPostgresSaver`'s blob and checkpoint upserts as one statement (committed asynchronously,
like the writes: see `ASYNC_COMMIT`). The arrays travel in binary (`%b`): psycopg's text format
quotes each element through a regular expression and spells every blob out in hex, 135 us for a
checkpoint's nine channels against 28 us."""
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


class ResilientPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose reads and writes retry while the database is unreachable, and
    whose operations over a pool run concurrently."""

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
        params = {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
            "parent_id": configurable.get("checkpoint_id"),
            "checkpoint": Jsonb({**checkpoint, "channel_values": inline}),
            "metadata": Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
            **_columns(blobs, channels=2, versions=3, types=4, blobs=5),
        }
        await retrying(lambda: self._execute(UPSERT_CHECKPOINT_WITH_BLOBS, params), what="checkpoint save")
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        configurable = config["configurable"]
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        if special:  # one statement may not update a row twice: the last write at an index wins
            rows = list({row[5]: row for row in rows}.values())
        params = {
            "thread_id": configurable["thread_id"],
            "checkpoint_ns": configurable["checkpoint_ns"],
            "checkpoint_id": configurable["checkpoint_id"],
            "task_id": task_id,
            "task_path": task_path,
            **_columns(rows, idxs=5, channels=6, types=7, blobs=8),
        }
        query = UPSERT_WRITES if special else INSERT_NEW_WRITES
        await retrying(lambda: self._execute(query, params), what="checkpoint writes")

    async def _execute(self, query: str, params: dict[str, Any]) -> None:
        async with self._cursor() as cur:
            await cur.execute(query, params)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        parent = super().aget_tuple
        return await retrying(lambda: parent(config), what="checkpoint read")


def _columns(rows: Sequence[Sequence[Any]], **positions: int) -> dict[str, list[Any]]:
    """Rows as one array per named column (the column at each position), for `unnest`."""
    return {name: [row[i] for row in rows] for name, i in positions.items()}
