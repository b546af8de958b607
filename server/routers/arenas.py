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
from server.store import arenas as arena_store
from server.store import threads as thread_store
from server.store.arenas import EntryRow
from tradegraph.accounts import get_model
from tradegraph.database import Pool
from tradegraph.reports import session_curve, session_performance
from tradegraph.session_request import InvalidSession, check_session_request

router = APIRouter(prefix="/arenas", tags=["arenas"])
ACTIVE = ("pending", "running")


@router.post("")
async def create_arena(body: ArenaCreate, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    """Start one session per bot (a thread each, all queued at once) on the same market."""
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
    async with pool.connection() as conn:
        arena = await arena_store.get_arena(conn, arena_id=arena_id, user_id=user.id)
        if arena is None:
            raise HTTPException(404, f"arena {arena_id} not found")
        entries = await arena_store.entries(conn, arena_id=arena_id)
    standings = [await standing(pool, entry) for entry in entries]
    standings.sort(key=lambda s: (s["total_return"] is None, -(s["total_return"] or 0.0), s["model_id"]))
    return {
        "arena_id": str(arena_id),
        "input": arena["input"],
        "created_at": arena["created_at"].isoformat(),
        "standings": standings,
    }


STREAM_EVERY_S = 1.0


@router.get("/{arena_id}/stream")
async def stream_arena(arena_id: UUID, user: CurrentUser, pool: PoolDep) -> EventSourceResponse:
    """SSE: a `standings` event (the standings, and every bot's equity curve with buy-and-hold) each
    time they change, until no session is pending or running; then `end`."""
    async with pool.connection() as conn:
        if await arena_store.get_arena(conn, arena_id=arena_id, user_id=user.id) is None:
            raise HTTPException(404, f"arena {arena_id} not found")

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent = None
        while True:
            board = await get_arena(arena_id, user, pool)
            board["curves"] = await curves(pool, board["standings"])
            data = json.dumps(board, default=str)
            if data != sent:
                sent = data
                yield ServerSentEvent(data=data, event="standings")
            if all(row["status"] not in ACTIVE for row in board["standings"]):
                yield ServerSentEvent(data="null", event="end")
                return
            await asyncio.sleep(STREAM_EVERY_S)

    return EventSourceResponse(events())


async def curves(pool: Pool, standings: list[dict[str, Any]]) -> dict[str, Any]:
    """Every bot's equity by bar, and buy-and-hold (the same market for all: the longest one's)."""
    equity: dict[str, list[str]] = {}
    times: list[str] = []
    benchmark: list[str] = []
    async with pool.connection() as conn:
        for row in standings:
            points = await session_curve(conn, thread_id=row["thread_id"])
            equity[str(row["model_id"])] = [str(p["equity"]) for p in points]
            if len(points) > len(times):
                times = [p["bar_time"].isoformat() for p in points]
                benchmark = [str(p["benchmark"]) for p in points]
    return {"times": times, "equity": equity, "benchmark": benchmark}


async def standing(pool: Pool, entry: EntryRow) -> dict[str, Any]:
    """One bot's row: its session's status and progress, and its figures so far (None before a bar)."""
    async with pool.connection() as conn:
        figures = await session_performance(conn, thread_id=str(entry["thread_id"]))
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
