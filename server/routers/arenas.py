"""Arenas: several of the caller's bots on the same market at once, one session each, ranked live."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from graph.state import PROTECTED_FIELDS
from server.deps import CurrentUser, PoolDep, ServicesDep
from server.runs.create import create_run
from server.schemas import ArenaCreate, RunCreate
from server.services import RunServices
from server.store import arenas as arena_store
from server.store import threads as thread_store
from server.store.arenas import ArenaRow, EntryRow
from server.store.runs import ACTIVE
from tradegraph.accounts import User, get_model
from tradegraph.database import Pool
from tradegraph.metrics import Performance
from tradegraph.reports import CurvePoint, session_curve, session_performance
from tradegraph.session_request import InvalidSession, check_session_request

router = APIRouter(prefix="/arenas", tags=["arenas"])


@router.post("")
async def create_arena(body: ArenaCreate, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    """Start one session per bot (a thread each, all queued at once) on the same market."""
    return await start_arena(services, user, body)


async def start_arena(services: RunServices, user: User, body: ArenaCreate) -> dict[str, Any]:
    """Check the bots (the user's own, each once) and the session request, then create the arena with
    a thread per bot and queue their runs; an HTTPException naming the problem creates nothing."""
    if len(set(body.models)) != len(body.models):
        raise HTTPException(422, "models: each bot can enter an arena once")
    if named := set(PROTECTED_FIELDS) & set(body.input):
        raise HTTPException(422, f"input: {', '.join(sorted(named))} come from each bot, not the arena")
    pool = services.pool
    async with pool.connection() as conn:
        for model_id in body.models:
            if await get_model(conn, model_id=model_id, user_id=user.id) is None:
                raise HTTPException(404, f"model {model_id} not found")
    try:
        await check_session_request(pool, body.input)
    except InvalidSession as exc:
        raise HTTPException(422, f"input: {exc}") from exc
    arena_id = uuid.uuid4()
    async with pool.connection() as conn:
        await arena_store.insert_arena(conn, arena_id=arena_id, user_id=user.id, input=body.input)
    threads = []
    for model_id in body.models:
        thread_id = uuid.uuid4()
        async with pool.connection() as conn:
            metadata = {"model_id": model_id, "arena_id": str(arena_id)}
            await thread_store.create_thread(
                conn, thread_id=thread_id, user_id=user.id, model_id=model_id, metadata=metadata
            )
        request = RunCreate(assistant_id="trading_session", input=body.input, stream_mode=["custom"])
        run = await create_run(services, thread_id, user, request)
        async with pool.connection() as conn:
            await arena_store.add_entry(
                conn, arena_id=arena_id, model_id=model_id, thread_id=thread_id, run_id=run["run_id"]
            )
        threads.append({"model_id": model_id, "thread_id": str(thread_id), "run_id": str(run["run_id"])})
    return {"arena_id": str(arena_id), "threads": threads}


@router.get("")
async def list_arenas(
    user: CurrentUser,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The caller's arenas, newest first."""
    async with pool.connection() as conn:
        arenas = await arena_store.list_arenas(conn, user_id=user.id, limit=limit, offset=offset)
    return [
        {"arena_id": str(a["arena_id"]), "input": a["input"], "created_at": a["created_at"].isoformat()}
        for a in arenas
    ]


@router.get("/{arena_id}")
async def get_arena(arena_id: UUID, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """The arena's standings, best total return first; live while its sessions run."""
    board, _ = await read_board(pool, await owned_arena(pool, arena_id, user))
    return board


STREAM_EVERY_S = 1.0


@router.get("/{arena_id}/stream")
async def stream_arena(arena_id: UUID, user: CurrentUser, pool: PoolDep) -> EventSourceResponse:
    """SSE: a `standings` event (the standings, and every bot's equity curve with buy-and-hold) each
    time they change, until no session is pending or running; then `end`."""
    arena = await owned_arena(pool, arena_id, user)

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent = None
        while True:
            board, curves = await read_board(pool, arena)
            data = json.dumps({**board, "curves": curves}, default=str)
            if data != sent:
                sent = data
                yield ServerSentEvent(data=data, event="standings")
            if all(row["status"] not in ACTIVE for row in board["standings"]):
                yield ServerSentEvent(data="null", event="end")
                return
            await asyncio.sleep(STREAM_EVERY_S)

    return EventSourceResponse(events())


async def owned_arena(pool: Pool, arena_id: UUID, user: User) -> ArenaRow:
    """The caller's arena, or 404."""
    async with pool.connection() as conn:
        arena = await arena_store.get_arena(conn, arena_id=arena_id, user_id=user.id)
    if arena is None:
        raise HTTPException(404, f"arena {arena_id} not found")
    return arena


async def read_board(pool: Pool, arena: ArenaRow) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arena's standings, best total return first, and every bot's equity by bar with
    buy-and-hold (the same market for all: the longest curve's); each curve read once."""
    standings: list[dict[str, Any]] = []
    equity: dict[str, list[str]] = {}
    longest: list[CurvePoint] = []
    async with pool.connection() as conn:
        for entry in await arena_store.entries(conn, arena_id=arena["arena_id"]):
            points = await session_curve(conn, thread_id=str(entry["thread_id"]))
            figures = await session_performance(conn, thread_id=str(entry["thread_id"]), points=points)
            standings.append(standing(entry, figures))
            equity[str(entry["model_id"])] = [str(p["equity"]) for p in points]
            longest = points if len(points) > len(longest) else longest
    standings.sort(key=lambda s: (s["total_return"] is None, -(s["total_return"] or 0.0), s["model_id"]))
    board = {
        "arena_id": str(arena["arena_id"]),
        "input": arena["input"],
        "created_at": arena["created_at"].isoformat(),
        "standings": standings,
    }
    curves = {
        "times": [p["bar_time"].isoformat() for p in longest],
        "equity": equity,
        "benchmark": [str(p["benchmark"]) for p in longest],
    }
    return board, curves


def standing(entry: EntryRow, figures: Performance | None) -> dict[str, Any]:
    """One bot's row: its session's status and progress, and its figures so far (None before a bar)."""
    status = entry["run_status"]
    if status not in ACTIVE and entry["thread_status"] == "interrupted":
        status = "interrupted"  # paused for approval (or stopped with work left)
    return {
        "model_id": entry["model_id"],
        "signature": entry["signature"],
        "llm": entry["llm"],
        "thread_id": str(entry["thread_id"]),
        "status": status,
        "bars_done": entry["bars_done"],
        "bars_total": entry["bars_total"],
        "equity": figures.end_equity if figures else None,
        "total_return": figures.total_return if figures else None,
        "sharpe": figures.sharpe if figures else None,
        "max_drawdown": figures.max_drawdown if figures else None,
        "trades": figures.trades if figures else 0,
        "buy_and_hold_return": figures.buy_and_hold_return if figures else None,
    }
