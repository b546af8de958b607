"""Our saver (graph/checkpointer.py) leaves what LangGraph's own saver leaves."""

import asyncio
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import Command

from graph import checkpointer
from graph.builder import build_graph
from graph.checkpointer import SAVE_BATCH, ResilientPostgresSaver, batched_saves
from graph.config import run_config
from graph.context import SessionContext
from server.state_json import thread_state
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


async def run_with(
    saver: AsyncPostgresSaver, pool: Any, model: dict[str, Any], *, batched: bool = False
) -> str:
    thread_id = str(uuid.uuid4())
    graph = build_graph().compile(checkpointer=saver)
    config = run_config(thread_id, bars_total=10)
    context = SessionContext(pool=pool)
    async with batched_saves(saver, thread_id, durability="async" if batched else "sync"):
        async for _ in graph.astream(input_for(model, end="2012-01-05"), config, context=context):
            pass
    return thread_id


ROWS = """
SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s) AS checkpoints,
       (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s) AS blobs,
       (SELECT count(*) FROM checkpoint_writes WHERE thread_id = %(t)s) AS writes
"""


async def rows_of(pool: Any, thread_id: str) -> dict[str, int]:
    async with pool.connection() as conn:
        return dict(await (await conn.execute(ROWS, {"t": thread_id})).fetchone())


class CountedSaver(ResilientPostgresSaver):
    """Our saver, counting its statements by kind."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self.statements: Counter[str] = Counter()

    async def _execute(self, query: str, params: dict[str, Any]) -> None:
        self.statements["batch" if query == SAVE_BATCH else "writes"] += 1
        await super()._execute(query, params)


async def test_a_session_leaves_the_same_writes_as_langgraphs_own_saver(pool, make_model):
    """Every checkpoint keeps its tasks' writes (Studio shows them as the tasks' results), as with
    `AsyncPostgresSaver` itself, though ours saves a checkpoint, its blobs and its parent's writes
    in one statement."""
    saver = CountedSaver(pool)
    ours = await run_with(saver, pool, await make_model())
    stock = await run_with(AsyncPostgresSaver(pool), pool, await make_model())
    history = await writes_per_step(pool, ours)
    assert len(history) >= 6 and all(channels for _, channels in history[:-1])  # the last: the end
    assert history == await writes_per_step(pool, stock)
    assert await rows_of(pool, ours) == await rows_of(pool, stock)
    assert saver.statements == {"batch": len(history)}  # every step's writes rode along


async def test_a_run_holding_its_thread_saves_its_checkpoints_in_batches(pool, make_model, monkeypatch):
    """In `batched_saves` (the executor's runs with durability "async"), a session's checkpoints and
    writes wait in memory and go in one statement when it stops: the rows `AsyncPostgresSaver`
    leaves, every one of them."""
    monkeypatch.setattr(checkpointer, "FLUSH_AFTER_S", 60.0)
    saver = CountedSaver(pool)
    ours = await run_with(saver, pool, await make_model(), batched=True)
    stock = await run_with(AsyncPostgresSaver(pool), pool, await make_model())
    assert await writes_per_step(pool, ours) == await writes_per_step(pool, stock)
    assert await rows_of(pool, ours) == await rows_of(pool, stock)
    assert saver.statements == {"batch": 1}


async def stored_writes(pool: Any, thread_id: str) -> list[str]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT task_id FROM checkpoint_writes WHERE thread_id = %s ORDER BY task_id", (thread_id,)
            )
        ).fetchall()
    return [row["task_id"] for row in rows]


async def test_writes_no_checkpoint_takes_are_saved_on_their_own(pool, monkeypatch):
    """Held writes whose next checkpoint never comes (a run that stops) are saved before the thread
    is read, when the executor flushes, or after FLUSH_AFTER_S, each batch in its own statement."""
    monkeypatch.setattr(checkpointer, "FLUSH_AFTER_S", 0.2)
    saver, thread_id = CountedSaver(pool), str(uuid.uuid4())
    thread = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    config = await saver.aput(thread, empty_checkpoint(), {}, {})

    await saver.aput_writes(config, [("bar_index", 1)], "task-read")
    assert await stored_writes(pool, thread_id) == []  # held
    saved = await saver.aget_tuple(config)
    assert saved is not None and [w[0] for w in saved.pending_writes or []] == ["task-read"]

    await saver.aput_writes(config, [("bar_index", 2)], "task-flushed")
    await saver.flush(thread_id)
    assert await stored_writes(pool, thread_id) == ["task-flushed", "task-read"]

    await saver.aput_writes(config, [("bar_index", 3)], "task-late")
    await asyncio.sleep(0.1)
    assert "task-late" not in await stored_writes(pool, thread_id)
    await asyncio.sleep(0.4)
    assert "task-late" in await stored_writes(pool, thread_id)
    assert saver.statements == {"batch": 4}


async def test_a_deleted_thread_keeps_no_write_that_was_held(pool, monkeypatch):
    monkeypatch.setattr(checkpointer, "FLUSH_AFTER_S", 0.2)
    saver, thread_id = CountedSaver(pool), str(uuid.uuid4())
    thread = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    config = await saver.aput(thread, empty_checkpoint(), {}, {})
    await saver.aput_writes(config, [("bar_index", 1)], "task-held")
    await saver.adelete_thread(thread_id)
    await asyncio.sleep(0.4)
    assert await stored_writes(pool, thread_id) == [] and await saver.aget_tuple(thread) is None
    assert saver.statements == {"batch": 1}


async def final_state_both_ways(graph: Any, saver: Any, payload: Any, thread_id: str) -> Any:
    """Run with the thread tracked: the final state as the run's end reads it, whether memory
    answered, and the final state from the database."""
    config = run_config(thread_id, bars_total=10)
    saver.last_saved.track(thread_id)
    async for _ in graph.astream(payload, config, context=SessionContext(pool=saver.conn)):
        pass
    await saver.flush(thread_id)
    from_memory = saver.last_saved.tuple_of(config) is not None
    kept = await graph.aget_state(config)
    saver.last_saved.untrack(thread_id)
    assert saver.last_saved.tuple_of(config) is None
    return kept, from_memory, await graph.aget_state(config)


APPROVE_TWO = {"action": "approve", "quantity": 2}


async def test_a_runs_final_state_kept_in_memory_is_what_the_database_returns(pool, make_model):
    """What the executor reads at a run's end without a round trip (graph/last_saved.py) equals the
    database's answer: after a whole session, at a pause for approval, and after the last answer. A
    run that saved no checkpoint (an answer consumed by a node that paused again) reads the database."""
    saver = ResilientPostgresSaver(pool)
    graph = build_graph().compile(checkpointer=saver)
    model = await make_model(approval_notional=Decimal(1000))
    ended, paused = str(uuid.uuid4()), str(uuid.uuid4())
    cases = [
        await final_state_both_ways(graph, saver, input_for(await make_model(), end="2012-01-10"), ended),
        await final_state_both_ways(graph, saver, input_for(model, end="2012-01-03"), paused),
        await final_state_both_ways(
            graph, saver, Command(resume={"action": "approve", "quantity": 2}), paused
        ),
        await final_state_both_ways(graph, saver, Command(resume={"action": "reject"}), paused),
    ]
    assert [from_memory for _, from_memory, _ in cases] == [True, True, False, True]
    for kept, _, stored in cases:
        assert thread_state(kept) == thread_state(stored)
        assert (kept.values, kept.next, kept.config, kept.parent_config, kept.interrupts) == (
            stored.values,
            stored.next,
            stored.config,
            stored.parent_config,
            stored.interrupts,
        )
    assert cases[0][0].values["done"] and not cases[0][0].next
    assert cases[1][0].interrupts and cases[2][0].interrupts  # AAPL's order, then MSFT's
    assert cases[3][0].values["done"] and not cases[3][0].interrupts
