"""Our saver (graph/checkpointer.py) leaves what LangGraph's own saver leaves."""

import uuid
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

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
    `AsyncPostgresSaver` itself, though ours saves a checkpoint and its blobs in one statement."""
    ours = await run_with(ResilientPostgresSaver(pool), pool, await make_model())
    stock = await run_with(AsyncPostgresSaver(pool), pool, await make_model())
    history = await writes_per_step(pool, ours)
    assert len(history) >= 6 and all(channels for _, channels in history[:-1])  # the last: the end
    assert history == await writes_per_step(pool, stock)
