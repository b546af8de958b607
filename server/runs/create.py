"""Turn a run request into a queued run: ownership, identity, validation, then the lifecycle's `submit`.

Identity is never taken from the client: a session's `model_id` and `signature` are read from the
thread's model and written into the run input here. Input that names another identity is a 403.
"""

import uuid
from typing import Any, Protocol
from uuid import UUID

from fastapi import HTTPException
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from graph.config import thread_config
from graph.state import PROTECTED_FIELDS, session_input
from server.assistant import GRAPH_METADATA, resolve_assistant
from server.runs.job import RunJob
from server.runs.lifecycle import RunLifecycle, RunRequest, ThreadBusy
from server.schemas import RunCreate
from server.store import threads as thread_store
from server.store.runs import RunRow
from server.store.threads import ThreadRow
from server.webhooks import WebhookRefused, check_target
from tradegraph.accounts import User, ai_of, get_model, terms_of
from tradegraph.approval import InvalidApproval, parse_answer
from tradegraph.database import Pool
from tradegraph.session_request import TODAY, InvalidSession, check_session_request, check_session_shape


class RunServicesLike(Protocol):
    """What starting a run needs: the pool, the graph (to read a thread's state) and the lifecycle."""

    pool: Pool
    graph: CompiledStateGraph[Any, Any, Any, Any]
    lifecycle: RunLifecycle


async def create_run(
    services: RunServicesLike,
    thread_id: UUID,
    user: User,
    body: RunCreate,
    *,
    run_id: UUID | None = None,
    scheduled: bool = False,
) -> RunRow:
    """Validate, store and queue the run (applying its multitask strategy); returns the run row.

    `scheduled` (a cron's run): a session whose dates have no bars yet is queued anyway, and ends with
    the error naming them (its webhook says so), instead of being refused here."""
    assistant_id = resolve_assistant(body.assistant_id)
    thread = await _thread_for_run(services.pool, thread_id, user, body)
    job = await _job(services, thread, user, body, scheduled=scheduled)
    request = RunRequest(
        run_id=run_id or uuid.uuid4(),
        thread_id=thread_id,
        user_id=user.id,
        assistant_id=assistant_id,
        job=job,
        metadata={**body.metadata, **GRAPH_METADATA},
        thread_metadata=GRAPH_METADATA,
    )
    try:
        return await services.lifecycle.submit(request, strategy=body.multitask_strategy)
    except ThreadBusy as exc:
        raise HTTPException(409, str(exc)) from exc


async def _job(
    services: RunServicesLike, thread: ThreadRow, user: User, body: RunCreate, *, scheduled: bool
) -> RunJob:
    """The run's job: a checked session input, a checked command, or a plain resume."""
    if body.input is not None and body.command is not None:
        raise HTTPException(422, "send either input or command, not both")
    if body.webhook is not None:
        checked_webhook(body.webhook)
    job = RunJob(
        stream_mode=body.modes(),
        config=body.config or {},
        interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after,
        durability=body.durability,
        checkpoint_id=body.checkpoint_id,
        on_disconnect=body.on_disconnect,
        webhook=body.webhook,
    )
    if body.command is not None:
        update = body.command.update
        if isinstance(update, dict) and (named := set(PROTECTED_FIELDS) & set(update)):
            raise HTTPException(403, f"command.update cannot write {', '.join(sorted(named))}")
        job.command = body.command.model_dump(exclude_none=True)
        if body.command.resume is not None:
            job.bars_total, job.answers = await _check_resume(
                services, thread["thread_id"], body.command.resume
            )
    elif body.input is not None:
        job.input, job.bars_total = await checked_input(
            services.pool, thread["model_id"], user, body.input, scheduled=scheduled
        )
    else:
        job.bars_total = _bars_left(await services.graph.aget_state(thread_config(thread["thread_id"])))
    return job


async def _thread_for_run(pool: Pool, thread_id: UUID, user: User, body: RunCreate) -> ThreadRow:
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


def checked_webhook(url: str) -> str:
    """A webhook URL this server may call; a 422 naming `webhook` otherwise."""
    try:
        return check_target(url)
    except WebhookRefused as exc:
        raise HTTPException(422, f"webhook: {exc}") from exc


async def checked_input(
    pool: Pool, model_id: int | None, user: User, raw: Any, *, scheduled: bool = False
) -> tuple[dict[str, Any], int]:
    """The checked session input with identity from the database, and its number of bars.

    `today` stays `today` in the stored input: it is resolved again when the run starts."""
    if not isinstance(raw, dict):
        raise HTTPException(422, "input must be an object: {mode, start, end, symbols, decider}")
    if model_id is None:
        raise HTTPException(
            422, "this thread has no model: create it with metadata.model_id to run a session"
        )
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=model_id, user_id=user.id)
    if model is None:
        raise HTTPException(404, f"model {model_id} not found")
    identity = {
        "model_id": model["id"],
        "signature": model["signature"],
        "owner_id": model["user_id"],
        "llm": ai_of(model),
        "terms": terms_of(model).as_json(),
    }
    for field in PROTECTED_FIELDS:
        if field in raw and raw[field] != identity[field]:
            raise HTTPException(
                403,
                f"input.{field} does not match this thread's model; identity comes from the thread",
            )
    try:
        request = await (check_session_shape if scheduled else check_session_request)(pool, raw)
    except InvalidSession as exc:
        raise HTTPException(422, str(exc)) from exc
    bars = len(await request.bar_times(pool))
    if not bars and not scheduled:
        raise HTTPException(
            422, f"no trading days for {', '.join(request.symbols)} in {request.start}..{request.end}"
        )
    checked = dict(session_input(request, model_id=model["id"], signature=model["signature"]))
    for field in ("start", "end"):
        if str(raw.get(field, "")).strip().lower() == TODAY:
            checked[field] = TODAY
    return checked, max(bars, 1)


async def _check_resume(services: RunServicesLike, thread_id: UUID, resume: Any) -> tuple[int, list[str]]:
    """Bars left and the pending interrupt's id; 409 unless paused; 422 unless a reviewer's answer."""
    snapshot = await services.graph.aget_state(thread_config(thread_id))
    if not snapshot.interrupts:
        raise HTTPException(409, f"thread {thread_id} is not paused for approval; there is nothing to resume")
    pending = snapshot.interrupts[0].value
    if isinstance(pending, dict) and pending.get("kind") == "order_approval":
        try:
            parse_answer(resume, int(pending["quantity"]))
        except InvalidApproval as exc:
            raise HTTPException(422, f"command.resume: {exc}") from exc
    return _bars_left(snapshot), [snapshot.interrupts[0].id]


def _bars_left(snapshot: StateSnapshot) -> int:
    values = snapshot.values or {}
    return max(int(values.get("bars_total", 1)) - int(values.get("bar_index", 0)), 1)


def run_json(run: RunRow) -> dict[str, Any]:
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
        "kwargs": RunJob.model_validate(run["kwargs"]).protocol_kwargs(),
    }
