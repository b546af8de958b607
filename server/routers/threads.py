"""Threads: create, read, update, delete, search, state, history and state updates (incl. forks)."""

import uuid
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Response

from graph.config import thread_config
from graph.state import PROTECTED_FIELDS
from server.deps import CurrentUser, PoolDep, ServicesDep
from server.retention import ThreadsBusy
from server.schemas import (
    HistoryRequest,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadTTL,
)
from server.serialization import to_jsonable
from server.services import RunServices
from server.state_json import thread_json, thread_state
from server.store import runs as run_store
from server.store import threads as thread_store
from server.store.threads import ThreadRow
from tradegraph.accounts import User, get_model
from tradegraph.database import Pool

router = APIRouter(prefix="/threads", tags=["threads"])


def not_found(thread_id: UUID) -> HTTPException:
    """The same 404 for a thread that does not exist and one that belongs to someone else."""
    return HTTPException(404, f"Thread with ID {thread_id} not found")


async def owned_thread(pool: Pool, thread_id: UUID, user: User) -> ThreadRow:
    """The caller's thread, or 404."""
    async with pool.connection() as conn:
        thread = await thread_store.get_thread(conn, thread_id=thread_id, user_id=user.id)
    if thread is None:
        raise not_found(thread_id)
    return thread


async def thread_with_state(services: RunServices, thread: ThreadRow) -> dict[str, Any]:
    """The thread object with its current values and interrupts (and the error of a failed one)."""
    snapshot = await services.graph.aget_state(thread_config(thread["thread_id"]))
    error = None
    if thread["status"] == "error":
        async with services.pool.connection() as conn:
            runs = await run_store.list_runs(
                conn,
                thread_id=thread["thread_id"],
                user_id=thread["user_id"],
                status="error",
                limit=1,
                offset=0,
            )
        error = runs[0]["error"] if runs else None
    return thread_json(thread, snapshot, error)


def ttl_of(ttl: ThreadTTL | None) -> thread_store.ThreadTTL | None:
    """The stored form of a request's `ttl`."""
    return thread_store.ThreadTTL(ttl.ttl, ttl.strategy) if ttl else None


def model_id_of(metadata: dict[str, Any]) -> int | None:
    """`metadata.model_id` as an int; 422 when present but not a model id."""
    raw = metadata.get("model_id")
    if raw is None:
        return None
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
        raise HTTPException(422, f"metadata.model_id must be an integer model id, got {raw!r}")
    return int(raw)


@router.post("")
async def create_thread(
    body: ThreadCreate, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """Create a thread; `metadata.model_id` makes it a trading session of that (owned) model."""
    model_id = model_id_of(body.metadata)
    thread_id = body.thread_id or uuid.uuid4()
    async with pool.connection() as conn:
        if model_id is not None and await get_model(conn, model_id=model_id, user_id=user.id) is None:
            raise HTTPException(404, f"model {model_id} not found")
        metadata = {**body.metadata, **({"model_id": model_id} if model_id is not None else {})}
        thread = await thread_store.create_thread(
            conn,
            thread_id=thread_id,
            user_id=user.id,
            model_id=model_id,
            metadata=metadata,
            ttl=ttl_of(body.ttl),
        )
        if thread is None:
            existing = await thread_store.get_thread(conn, thread_id=thread_id, user_id=user.id)
            if existing is not None and body.if_exists == "do_nothing":
                return await thread_with_state(services, existing)
            raise HTTPException(409, f"Thread with ID {thread_id} already exists")
    return thread_json(thread, None)


@router.post("/search")
async def search_threads(
    body: ThreadSearch, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> list[dict[str, Any]]:
    """The caller's threads matching ids, metadata (containment) and status."""
    async with pool.connection() as conn:
        threads = await thread_store.search_threads(
            conn,
            user_id=user.id,
            ids=body.ids,
            metadata=body.metadata,
            status=body.status,
            limit=body.limit,
            offset=body.offset,
            sort_by=body.sort_by,
            sort_order=body.sort_order,
        )
    return [await thread_with_state(services, t) for t in threads]


@router.get("/{thread_id}")
async def get_thread(
    thread_id: UUID, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """One thread."""
    return await thread_with_state(services, await owned_thread(pool, thread_id, user))


@router.patch("/{thread_id}")
async def patch_thread(
    thread_id: UUID, body: ThreadPatch, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """Merge metadata (the session's model binding cannot be changed); set or replace the `ttl`."""
    thread = await owned_thread(pool, thread_id, user)
    if "model_id" in body.metadata and model_id_of(body.metadata) != thread["model_id"]:
        raise HTTPException(422, "metadata.model_id cannot change: a session stays bound to its model")
    async with pool.connection() as conn:
        updated = await thread_store.patch_thread(
            conn, thread_id=thread_id, user_id=user.id, metadata=body.metadata, ttl=ttl_of(body.ttl)
        )
    assert updated is not None
    return await thread_with_state(services, updated)


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(thread_id: UUID, services: ServicesDep, user: CurrentUser, pool: PoolDep) -> Response:
    """Delete a thread with its runs and checkpoints (the ledger keeps its orders and fills)."""
    await owned_thread(pool, thread_id, user)
    async with pool.connection() as conn:
        if await run_store.active_runs(conn, thread_id=thread_id):
            raise HTTPException(409, f"Thread {thread_id} has runs in flight; cancel them first")
    await services.retention.delete([thread_id])
    return Response(status_code=204)


@router.post("/prune")
async def prune_threads(body: ThreadPrune, services: ServicesDep, user: CurrentUser) -> dict[str, int]:
    """`keep_latest`: keep each thread's latest checkpoint (its final state), drop the per-step ones
    and stored stream events; `delete`: delete the threads. Only the caller's threads count."""
    try:
        pruned = await services.retention.prune(user.id, body.thread_ids, body.strategy)
    except ThreadsBusy as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"pruned_count": pruned}


@router.get("/{thread_id}/state")
async def get_state(
    thread_id: UUID, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """The latest checkpoint's state."""
    await owned_thread(pool, thread_id, user)
    return thread_state(await services.graph.aget_state(thread_config(thread_id)))


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: UUID, checkpoint_id: str, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """The state at one checkpoint."""
    await owned_thread(pool, thread_id, user)
    snapshot = await services.graph.aget_state(thread_config(thread_id, checkpoint_id))
    if not snapshot.config.get("configurable", {}).get("checkpoint_id"):
        raise HTTPException(404, f"checkpoint {checkpoint_id} not found")
    return thread_state(snapshot)


async def _history(services: RunServices, thread_id: UUID, body: HistoryRequest) -> list[dict[str, Any]]:
    """Checkpoints newest first, `before` one (an id, or a checkpoint object), matching `metadata`."""
    before = body.before
    before_config = (
        thread_config(thread_id, before)
        if isinstance(before, str)
        else ({"configurable": {**before, "thread_id": str(thread_id)}} if before else None)
    )
    return [
        thread_state(s)
        async for s in services.graph.aget_state_history(
            thread_config(thread_id), limit=body.limit, before=before_config, filter=body.metadata
        )
    ]


@router.get("/{thread_id}/history")
async def get_history(
    thread_id: UUID,
    services: ServicesDep,
    user: CurrentUser,
    pool: PoolDep,
    limit: int = 1,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """Checkpoints, newest first."""
    await owned_thread(pool, thread_id, user)
    return await _history(services, thread_id, HistoryRequest(limit=limit, before=before))


@router.post("/{thread_id}/history")
async def post_history(
    thread_id: UUID, body: HistoryRequest, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> list[dict[str, Any]]:
    """Checkpoints, newest first (filters in the body)."""
    await owned_thread(pool, thread_id, user)
    return await _history(services, thread_id, body)


@router.post("/{thread_id}/state")
async def update_state(
    thread_id: UUID, body: StateUpdate, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """Update state as a node, or fork a checkpoint with `as_node: "__copy__"`. Identity is not writable."""
    await owned_thread(pool, thread_id, user)
    if isinstance(body.values, dict) and (named := set(PROTECTED_FIELDS) & set(body.values)):
        raise HTTPException(
            403, f"{', '.join(sorted(named))}: set from the thread's model, and cannot be written"
        )
    async with pool.connection() as conn:
        if await run_store.active_runs(conn, thread_id=thread_id):
            raise HTTPException(409, f"Thread {thread_id} has runs in flight")
    graph = services.graph
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    current = await graph.aget_state(thread_config(thread_id, checkpoint_id))
    if not current.config.get("configurable", {}).get("checkpoint_id"):
        raise HTTPException(400, f"Thread {thread_id} has no state to update yet; start a run first")
    try:
        config = await graph.aupdate_state(current.config, body.values, as_node=body.as_node)
    except (ValueError, KeyError) as exc:
        raise HTTPException(400, f"cannot update state: {exc}") from exc
    await services.lifecycle.settle_thread(thread_id)
    checkpoint = to_jsonable(config["configurable"])
    return {
        "checkpoint": checkpoint,
        "configurable": checkpoint,
        "checkpoint_id": checkpoint.get("checkpoint_id"),
    }
