"""A step's writes ride with the step's checkpoint (graph/checkpointer.py), and none is ever lost."""

import asyncio
import uuid
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import INTERRUPT
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from graph import checkpointer as module
from graph.builder import build_graph
from graph.checkpointer import ResilientPostgresSaver
from graph.config import run_config
from graph.context import SessionContext
from tests.support.sessions import input_for

WRITES_PER_STEP = """
SELECT (c.metadata ->> 'step')::int AS step,
       array_agg(w.channel ORDER BY w.task_path, w.idx) FILTER (WHERE w.channel IS NOT NULL) AS channels
FROM checkpoints c
LEFT JOIN checkpoint_writes w
       ON (w.thread_id, w.checkpoint_ns, w.checkpoint_id) = (c.thread_id, c.checkpoint_ns, c.checkpoint_id)
WHERE c.thread_id = %s
GROUP BY c.checkpoint_id, step
ORDER BY step
"""


async def writes_per_step(pool: Any, thread_id: str) -> list[tuple[int, list[str] | None]]:
    async with pool.connection() as conn:
        rows = await (await conn.execute(WRITES_PER_STEP, (thread_id,))).fetchall()
    return [(row["step"], row["channels"]) for row in rows]


async def run_with(saver: AsyncPostgresSaver, pool: Any, model: dict[str, Any]) -> str:
    thread_id = str(uuid.uuid4())
    graph = build_graph().compile(checkpointer=saver)
    config = run_config(thread_id, bars_total=10)
    context = SessionContext(pool=pool)
    async for _ in graph.astream(input_for(model, end="2012-01-05"), config, context=context):
        pass
    return thread_id


async def test_a_session_leaves_the_same_writes_as_langgraphs_own_saver(pool, make_model):
    """Every checkpoint keeps its tasks' writes (Studio shows them as the tasks' results), as with
    `AsyncPostgresSaver` itself, though most of them were saved by the next checkpoint's statement."""
    ours = await run_with(ResilientPostgresSaver(pool), pool, await make_model())
    stock = await run_with(AsyncPostgresSaver(pool), pool, await make_model())
    history = await writes_per_step(pool, ours)
    assert len(history) >= 6 and all(channels for _, channels in history[:-1])  # the last: the end
    assert history == await writes_per_step(pool, stock)


class Recording(ResilientPostgresSaver):
    """Our saver, noting each statement it sends."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.statements: list[str] = []

    async def _execute(self, query: str, params: dict[str, Any]) -> None:
        self.statements.append(query)
        await super()._execute(query, params)


async def first_checkpoint(saver: ResilientPostgresSaver) -> RunnableConfig:
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
    return await saver.aput(config, empty_checkpoint(), {"step": -1}, {})


async def pending_writes(saver: ResilientPostgresSaver, config: RunnableConfig) -> list[tuple[str, str, Any]]:
    saved = await saver.aget_tuple(config)
    assert saved is not None
    return sorted(saved.pending_writes or [])


async def test_the_next_checkpoint_saves_a_steps_writes_in_its_own_statement(pool):
    saver = Recording(pool)
    parent = await first_checkpoint(saver)
    task = asyncio.create_task(saver.aput_writes(parent, [("portfolio", 1), ("fills", [2])], "task-1"))
    await asyncio.sleep(0)  # the task ended: its writes are on their way, then the step's checkpoint
    await saver.aput(parent, empty_checkpoint(), {"step": 0}, {})
    await task
    assert saver.statements.count(module.INSERT_NEW_WRITES) == 0
    assert saver.statements.count(module.UPSERT_CHECKPOINT_WITH_BLOBS_AND_WRITES) == 1
    assert await pending_writes(saver, parent) == [("task-1", "fills", [2]), ("task-1", "portfolio", 1)]


async def test_writes_no_checkpoint_takes_are_saved_on_their_own(pool):
    """A state update, or a step whose sibling task runs on: no checkpoint follows in time."""
    saver = Recording(pool)
    parent = await first_checkpoint(saver)
    await saver.aput_writes(parent, [("portfolio", 1)], "task-1")
    assert saver.statements.count(module.INSERT_NEW_WRITES) == 1
    assert await pending_writes(saver, parent) == [("task-1", "portfolio", 1)]


async def test_a_pause_saves_the_writes_held_for_its_checkpoint_at_once(pool, monkeypatch):
    """A step that pauses or fails has no checkpoint after it: its special write releases the
    others' held writes (with a hold of a minute, waiting for it would fail this test)."""
    monkeypatch.setattr(module, "HOLD_WRITES_S", 60.0)
    saver = Recording(pool)
    parent = await first_checkpoint(saver)
    held = asyncio.create_task(saver.aput_writes(parent, [("portfolio", 1)], "task-1"))
    await asyncio.sleep(0)
    await saver.aput_writes(parent, [(INTERRUPT, "approve?")], "task-2")
    await asyncio.wait_for(held, timeout=10)
    writes = await pending_writes(saver, parent)
    assert [(task, channel) for task, channel, _ in writes] == [
        ("task-1", "portfolio"),
        ("task-2", INTERRUPT),
    ]


async def test_a_cancelled_writer_leaves_nothing_held(pool):
    saver = Recording(pool)
    parent = await first_checkpoint(saver)
    task = asyncio.create_task(saver.aput_writes(parent, [("portfolio", 1)], "task-1"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await saver.aput(parent, empty_checkpoint(), {"step": 0}, {})
    assert saver.statements.count(module.UPSERT_CHECKPOINT_WITH_BLOBS_AND_WRITES) == 0
    assert not saver._held
