"""Turn a run request into a queued run: ownership, identity, validation, multitask strategy.

Identity is never taken from the client: a session's `model_id` and `signature` are read from the
thread's model and written into the run input here. Input that names another identity is a 403.
"""

import uuid
from typing import Any
from uuid import UUID

from fastapi import HTTPException

from graph.state import IDENTITY_FIELDS
from nodes.approve import InvalidApproval, parse_answer
from server.routers.assistants import ASSISTANT_ID, resolve_assistant
from server.runs.cancel import abort_runs
from server.runs.queue import enqueue_run
from server.schemas import RunCreate
from server.store import runs as run_store
from server.store import threads as thread_store
from tradegraph.accounts import User, get_model
from tradegraph.database import Pool
from tradegraph.runner import bars_in
from tradegraph.session_request import InvalidSession, check_session_request

BUSY = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."


async def _thread_for_run(pool: Pool, thread_id: UUID, user: User, body: RunCreate) -> dict[str, Any]:
    """The caller's thread. `if_not_exists: "create"` cannot make a session: it has no model yet."""
    async with pool.connection() as conn:
        thread = await thread_store.get_thread(conn, thread_id=thread_id, user_id=user.id)
        exists = thread is not None or await thread_store.thread_exists(conn, thread_id=thread_id)
    if thread is None and body.if_not_exists == "create" and not exists:
        raise HTTPException(
            422,
            "a trading session needs a model: create the thread first with POST /threads "
            "and metadata.model_id, then start runs on it",
        )
    if thread is None:
        raise HTTPException(404, "Thread or assistant not found.")
    return thread


async def session_input(
    pool: Pool, thread: dict[str, Any], user: User, raw: Any
) -> tuple[dict[str, Any], int]:
    """The checked session input with identity from the database, and its number of bars."""
    if not isinstance(raw, dict):
        raise HTTPException(422, "input must be an object: {mode, start, end, symbols, decider}")
    if thread["model_id"] is None:
        raise HTTPException(
            422, "this thread has no model: create it with metadata.model_id to run a session"
        )
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=thread["model_id"], user_id=user.id)
    if model is None:
        raise HTTPException(404, f"model {thread['model_id']} not found")
    for field in IDENTITY_FIELDS:
        if field in raw and raw[field] != model["id" if field == "model_id" else "signature"]:
            raise HTTPException(
                403, f"input.{field} does not match this thread's model; identity comes from the thread"
            )
    try:
        request = await check_session_request(pool, raw)
    except InvalidSession as exc:
        raise HTTPException(422, str(exc)) from exc
    bars = await bars_in(pool, request)
    if not bars:
        raise HTTPException(
            422, f"no trading days for {', '.join(request.symbols)} in {request.start}..{request.end}"
        )
    return request.session_input(model_id=model["id"], signature=model["signature"]), bars


async def _check_resume(graph: Any, thread_id: UUID, resume: Any) -> int:
    """409 unless the session is paused; 422 unless the answer is one reviewers can give."""
    snapshot = await graph.aget_state({"configurable": {"thread_id": str(thread_id)}})
    if not snapshot.interrupts:
        raise HTTPException(409, f"thread {thread_id} is not paused for approval; there is nothing to resume")
    pending = snapshot.interrupts[0].value
    if isinstance(pending, dict) and pending.get("kind") == "order_approval":
        try:
            parse_answer(resume, int(pending["quantity"]))
        except InvalidApproval as exc:
            raise HTTPException(422, f"command.resume: {exc}") from exc
    return _bars_left(snapshot.values)


def _bars_left(values: dict[str, Any]) -> int:
    return max(int(values.get("bars_total", 1)) - int(values.get("bar_index", 0)), 1)


async def create_run(
    pool: Pool, services: Any, thread_id: UUID, user: User, body: RunCreate
) -> dict[str, Any]:
    """Validate, apply the multitask strategy, store and queue the run; returns the run row."""
    resolve_assistant(body.assistant_id)
    graph = services.graph
    thread = await _thread_for_run(pool, thread_id, user, body)
    if body.input is not None and body.command is not None:
        raise HTTPException(422, "send either input or command, not both")
    kwargs: dict[str, Any] = {
        "input": None,
        "command": None,
        "stream_mode": body.modes(),
        "config": body.config or {},
        "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after,
        "durability": body.durability,
        "checkpoint_id": body.checkpoint_id,
        "resumable": True,
        "on_disconnect": body.on_disconnect,
    }
    if body.command is not None:
        if body.command.update and set(IDENTITY_FIELDS) & set(
            body.command.update if isinstance(body.command.update, dict) else {}
        ):
            raise HTTPException(403, "command.update cannot write model_id or signature")
        bars = (
            await _check_resume(graph, thread_id, body.command.resume)
            if body.command.resume is not None
            else 1
        )
        kwargs["command"] = body.command.model_dump(exclude_none=True)
    elif body.input is not None:
        kwargs["input"], bars = await session_input(pool, thread, user, body.input)
    else:
        snapshot = await graph.aget_state({"configurable": {"thread_id": str(thread_id)}})
        bars = _bars_left(snapshot.values or {})
    kwargs["bars_total"] = bars
    run_id = uuid.uuid4()
    metadata = {**body.metadata, "graph_id": "trading_session", "assistant_id": str(ASSISTANT_ID)}

    async def insert(conn: Any) -> dict[str, Any]:
        return await run_store.insert_run(
            conn,
            run_id=run_id,
            thread_id=thread_id,
            user_id=user.id,
            assistant_id=ASSISTANT_ID,
            metadata=metadata,
            kwargs=kwargs,
            multitask_strategy=body.multitask_strategy,
            thread_metadata={"graph_id": "trading_session", "assistant_id": str(ASSISTANT_ID)},
        )

    doomed: list[dict[str, Any]] = []
    if body.multitask_strategy == "enqueue":  # nothing to decide about other runs: one atomic insert
        async with pool.connection() as conn:
            run = await insert(conn)
    else:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (str(thread_id),))
            active = await run_store.active_runs(conn, thread_id=thread_id)
            if active and body.multitask_strategy == "reject":
                raise HTTPException(409, BUSY)
            if body.multitask_strategy in ("interrupt", "rollback"):
                doomed = active
            for old in doomed:
                await run_store.request_cancel(conn, run_id=old["run_id"], action=body.multitask_strategy)
            run = await insert(conn)
    await abort_runs(pool, services.executor, doomed, body.multitask_strategy)
    await enqueue_run(run_id=run_id, thread_id=thread_id)
    return run


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    """The protocol's run object."""
    return {
        "run_id": str(run["run_id"]),
        "thread_id": str(run["thread_id"]),
        "assistant_id": str(run["assistant_id"]),
        "created_at": run["created_at"].isoformat(),
        "updated_at": run["updated_at"].isoformat(),
        "status": run["status"],
        "metadata": run["metadata"],
        "multitask_strategy": run["multitask_strategy"],
        "kwargs": {k: v for k, v in run["kwargs"].items() if k != "bars_total"},
    }
