"""Runs on threads: background, streamed (SSE) and waited; list, get, join, rejoin and cancel."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, cast
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from server.deps import CurrentUser, PoolDep, ServicesDep
from server.routers.threads import owned_thread
from server.runs.create import create_run, run_json
from server.runs.follow import RunStuck, run_events, run_result, wait_until_done
from server.runs.lifecycle import CancelAction
from server.runs.notifier import Mark
from server.schemas import RunCreate
from server.services import RunServices
from server.store import runs as run_store
from server.store.runs import RunRow
from tradegraph.accounts import User
from tradegraph.database import Pool

router = APIRouter(prefix="/threads/{thread_id}/runs", tags=["runs"])
KEEPALIVE_S = 5.0


def _locations(thread_id: UUID, run_id: Any, tail: str) -> dict[str, str]:
    return {
        "Location": f"/threads/{thread_id}/runs/{run_id}{tail}",
        "Content-Location": f"/threads/{thread_id}/runs/{run_id}",
    }


async def _owned_run(pool: Pool, thread_id: UUID, run_id: UUID, user: User) -> RunRow:
    await owned_thread(pool, thread_id, user)
    async with pool.connection() as conn:
        run = await run_store.get_run(conn, run_id=run_id, thread_id=thread_id, user_id=user.id)
    if run is None:
        raise HTTPException(404, f"Run {run_id} not found")
    return run


def _sse(events: AsyncIterator[bytes], headers: dict[str, str]) -> EventSourceResponse:
    return EventSourceResponse(
        events,
        ping=KEEPALIVE_S,
        headers={**headers, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("")
async def create_background_run(
    thread_id: UUID, body: RunCreate, services: ServicesDep, user: CurrentUser
) -> Response:
    """Queue a run and return it at once."""
    run = await create_run(services, thread_id, user, body)
    return Response(
        json.dumps(run_json(run)),
        media_type="application/json",
        headers=_locations(thread_id, run["run_id"], ""),
    )


@router.post("/stream")
async def create_streamed_run(
    thread_id: UUID, body: RunCreate, services: ServicesDep, user: CurrentUser
) -> EventSourceResponse:
    """Queue a run and stream its events; `on_disconnect: cancel` cancels it if the client leaves."""
    mark = services.notifier.mark()
    run = await create_run(services, thread_id, user, body)
    events = _followed(
        services,
        run,
        after=0,
        modes=None,
        cancel_on_disconnect=body.on_disconnect == "cancel",
        created=mark,
    )
    return _sse(events, _locations(thread_id, run["run_id"], "/stream"))


async def _followed(
    services: RunServices,
    run: RunRow,
    *,
    after: int,
    modes: set[str] | None,
    cancel_on_disconnect: bool,
    created: Mark | None = None,
) -> AsyncIterator[bytes]:
    """A run's events, each batch in one write; if the client leaves before the end and asked for
    it, the run is cancelled. `created`: the request created the run (follow.run_events)."""
    finished = False
    try:
        async for batch in run_events(services, run["run_id"], after=after, modes=modes, created=created):
            yield b"".join(event.encode() for event in batch)
        finished = True
    finally:
        if not finished and cancel_on_disconnect:
            await asyncio.shield(services.lifecycle.cancel(run, "interrupt"))


async def _waited_body(
    services: RunServices, run: RunRow, thread_id: UUID, created: Mark | None = None
) -> AsyncIterator[bytes]:
    """Newlines every few seconds while the run works (JSON allows leading whitespace), then the result.
    `created`: the request created the run (follow.wait_until_done)."""
    waiting = asyncio.create_task(wait_until_done(services, run["run_id"], created=created))
    try:
        while not waiting.done():
            done, _ = await asyncio.wait({waiting}, timeout=KEEPALIVE_S)
            if not done:
                yield b"\n"
        try:
            result = await run_result(services, waiting.result(), thread_id)
        except RunStuck as exc:
            result = {"__error__": {"error": "RunStuck", "message": str(exc)}}
        yield json.dumps(result).encode()
    finally:
        waiting.cancel()


@router.post("/wait")
async def create_waited_run(
    thread_id: UUID, body: RunCreate, services: ServicesDep, user: CurrentUser
) -> StreamingResponse:
    """Queue a run and answer with its final state (`__interrupt__` when paused, `__error__` when failed)."""
    mark = services.notifier.mark()
    run = await create_run(services, thread_id, user, body)
    return StreamingResponse(
        _waited_body(services, run, thread_id, mark),
        media_type="application/json",
        headers=_locations(thread_id, run["run_id"], "/join"),
    )


@router.get("")
async def list_runs(
    thread_id: UUID,
    user: CurrentUser,
    pool: PoolDep,
    limit: int = 10,
    offset: int = 0,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    await owned_thread(pool, thread_id, user)
    async with pool.connection() as conn:
        runs = await run_store.list_runs(
            conn,
            thread_id=thread_id,
            user_id=user.id,
            status=status,
            limit=max(1, min(limit, 1000)),
            offset=max(0, offset),
        )
    return [run_json(r) for r in runs]


@router.get("/{run_id}")
async def get_run(thread_id: UUID, run_id: UUID, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """One run."""
    return run_json(await _owned_run(pool, thread_id, run_id, user))


@router.get("/{run_id}/join")
async def join_run(
    thread_id: UUID, run_id: UUID, services: ServicesDep, user: CurrentUser, pool: PoolDep
) -> StreamingResponse:
    """Wait for a run to finish and return what /wait would."""
    run = await _owned_run(pool, thread_id, run_id, user)
    return StreamingResponse(_waited_body(services, run, thread_id), media_type="application/json")


@router.get("/{run_id}/stream")
async def join_run_stream(
    thread_id: UUID,
    run_id: UUID,
    request: Request,
    services: ServicesDep,
    user: CurrentUser,
    pool: PoolDep,
    stream_mode: str | None = None,
    cancel_on_disconnect: bool = False,
) -> EventSourceResponse:
    """Rejoin a run's stream: events after `Last-Event-ID` (all of them without it), then live ones."""
    run = await _owned_run(pool, thread_id, run_id, user)
    last = request.headers.get("last-event-id", "0").strip() or "0"
    if not last.isdigit():
        raise HTTPException(422, f"Last-Event-ID must be an event id from this stream, got {last!r}")
    modes = _modes_filter(request.query_params.getlist("stream_mode"))
    events = _followed(
        services,
        run,
        after=int(last),
        modes=modes,
        cancel_on_disconnect=cancel_on_disconnect,
    )
    return _sse(events, _locations(thread_id, run_id, "/stream"))


def _modes_filter(values: list[str]) -> set[str] | None:
    """Modes to keep from `?stream_mode=` (repeated, as the SDK sends a list, or one JSON array)."""
    modes: set[str] = set()
    for value in values:
        parsed: Any = value
        with contextlib.suppress(ValueError):
            parsed = json.loads(value)
        modes |= set(parsed) if isinstance(parsed, list) else {str(parsed)}
    modes.discard("")
    if not modes:
        return None
    return modes | ({"messages"} if "messages-tuple" in modes else set())


@router.post("/{run_id}/cancel")
async def cancel_run(
    thread_id: UUID,
    run_id: UUID,
    services: ServicesDep,
    user: CurrentUser,
    pool: PoolDep,
    wait: bool = False,
    action: str = "interrupt",
) -> Response:
    """Cancel a pending or running run: `interrupt` keeps its checkpoints, `rollback` erases the run."""
    if action not in ("interrupt", "rollback"):
        raise HTTPException(422, f"action must be interrupt or rollback, got {action!r}")
    run = await _owned_run(pool, thread_id, run_id, user)
    if not await services.lifecycle.cancel(run, cast(CancelAction, action)):
        raise HTTPException(
            409, f"run {run_id} is {run['status']}; only pending or running runs can be cancelled"
        )
    if wait:
        try:
            await wait_until_done(services, run_id)
        except RunStuck as exc:
            raise HTTPException(504, f"cancellation requested, but {exc}") from exc
        return Response(status_code=204)
    return Response(status_code=202)
