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
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from tradegraph.database import retrying


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
        parent = super().aput
        return await retrying(
            lambda: parent(config, checkpoint, metadata, new_versions), what="checkpoint save"
        )

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        parent = super().aput_writes
        await retrying(lambda: parent(config, writes, task_id, task_path), what="checkpoint writes")

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        parent = super().aget_tuple
        return await retrying(lambda: parent(config), what="checkpoint read")
