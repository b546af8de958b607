"""A run executed again (a retried job, a hand-back, a re-entry) continues; it never re-sends its command."""

import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

from langgraph.types import Command
from psycopg.types.json import Jsonb

from graph.builder import persistent_graph
from server.runs.executor import RunExecutor
from server.runs.job import RunJob
from server.runs.lifecycle import RunLifecycle
from server.store import threads as thread_store
from tests.support.sessions import input_for, run_session, state_of

INSERT_RUN = """
INSERT INTO runs (run_id, thread_id, user_id, assistant_id, kwargs, status)
VALUES (%s, %s, %s, %s, %s, 'pending')
"""
FIRST_BAR_ANSWERS = """
SELECT symbol, status, reason FROM orders
WHERE model_id = %s AND rule = 'human_approval' AND bar_time = '2012-01-03 16:00' ORDER BY client_order_id
"""


async def test_a_retried_resume_run_does_not_answer_the_next_pause(pool: Any, make_model: Any) -> None:
    model = await make_model(approval_notional=Decimal(1000))
    thread_id, _ = await run_session(pool, input_for(model))
    first_pause = (await state_of(pool, thread_id)).interrupts
    assert first_pause, "every order above 1,000 pauses"

    run_id = uuid.uuid4()
    job = RunJob(command={"resume": {"action": "approve"}}, answers=[first_pause[0].id], bars_total=62)
    async with pool.connection() as conn:
        await thread_store.create_thread(
            conn, thread_id=UUID(thread_id), user_id=model["user_id"], model_id=model["id"], metadata={}
        )
        await conn.execute(
            INSERT_RUN, (run_id, thread_id, model["user_id"], uuid.uuid4(), Jsonb(job.model_dump()))
        )
    graph = persistent_graph(pool)
    executor = RunExecutor(pool, graph, RunLifecycle(pool, graph))

    await executor.execute(run_id)  # answers the first pause, runs on to the next one
    second_pause = (await state_of(pool, thread_id)).interrupts
    assert second_pause and second_pause[0].id != first_pause[0].id

    async with pool.connection() as conn:  # as if its worker had died: the job is retried
        await conn.execute("UPDATE runs SET status = 'running' WHERE run_id = %s", (run_id,))
    await executor.execute(run_id)
    still = (await state_of(pool, thread_id)).interrupts
    assert [i.id for i in still] == [i.id for i in second_pause], "the second order still waits for a person"

    await run_session(
        pool, Command(resume={"action": "reject"}), thread_id=thread_id
    )  # the person answers it
    async with pool.connection() as conn:
        decided = await (await conn.execute(FIRST_BAR_ANSWERS, (model["id"],))).fetchall()
    assert [(d["symbol"], d["status"], d["reason"]) for d in decided] == [
        (first_pause[0].value["symbol"], "filled", "approved by reviewer"),
        (second_pause[0].value["symbol"], "rejected", "rejected by reviewer"),
    ]
