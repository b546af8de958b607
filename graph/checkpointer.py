"""The Postgres checkpointer, riding out database restarts.

With `durability="async"` LangGraph saves each checkpoint in the background, chained after the
previous save, and keeps running steps meanwhile: one failed save fails every later save, and the
run goes on without checkpoints until it ends. A restart would then make a resume replay every
step since the last saved checkpoint, against a ledger that already holds their fills. Retrying
saves and reads while the database is away (they are upserts, safe to repeat) keeps the saved
checkpoints in step with the ledger, so a resume replays at most the step that was interrupted.
"""

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from tradegraph.database import retrying


class ResilientPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose reads and writes retry while the database is unreachable."""

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
