"""LangGraph crons, with langgraph-api's paths and bodies (langgraph-sdk's `client.crons` works unchanged).

A cron on a thread runs its thread's bot; one without (`POST /runs/crons`) makes a new thread per run
for the bot in `metadata.model_id`. Each is the caller's own: another user's cron answers 404.
"""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Response
from pydantic import Field

from server.crons import (
    DEFAULT_TIMEZONE,
    CronField,
    InvalidCron,
    OnRunCompleted,
    SortBy,
    checked_schedule,
    count_crons,
    cron_json,
    delete_cron,
    get_cron,
    insert_cron,
    next_run,
    search_crons,
    update_cron,
)
from server.deps import CurrentUser, PoolDep
from server.routers.threads import owned_thread
from server.runs.create import checked_input, checked_webhook
from server.schemas import Body
from tradegraph.accounts import User, get_model
from tradegraph.database import Pool

router = APIRouter(tags=["crons"])
RUN_FIELDS = (
    "assistant_id",
    "input",
    "config",
    "context",
    "metadata",
    "webhook",
    "interrupt_before",
    "interrupt_after",
    "multitask_strategy",
    "durability",
    "stream_mode",
)
"""What a cron keeps of its body as the run request it makes (its `payload`)."""


class CronCreate(Body):
    schedule: str
    assistant_id: str
    input: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "enqueue"
    end_time: datetime | None = None
    enabled: bool = True
    timezone: str = DEFAULT_TIMEZONE
    on_run_completed: OnRunCompleted = "keep"
    durability: Literal["sync", "async", "exit"] = "async"
    stream_mode: Any = None


class CronPatch(Body):
    schedule: str | None = None
    end_time: datetime | None = None
    input: Any = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_run_completed: OnRunCompleted | None = None
    enabled: bool | None = None
    timezone: str | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    stream_mode: Any = None


class CronSearch(Body):
    assistant_id: str | None = None
    thread_id: UUID | None = None
    enabled: bool | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    metadata: dict[str, Any] | None = None
    sort_by: SortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[CronField] | None = None


class CronCount(Body):
    assistant_id: str | None = None
    thread_id: UUID | None = None
    metadata: dict[str, Any] | None = None


def _invalid(exc: Exception) -> HTTPException:
    return HTTPException(422, str(exc))


def _end(end_time: datetime | None) -> datetime | None:
    if end_time is not None and end_time.tzinfo is None:
        return end_time.replace(tzinfo=UTC)
    return end_time


async def _checked_run(
    pool: Pool, user: User, model_id: int | None, body: CronCreate | CronPatch, run: dict[str, Any]
) -> None:
    """The run a cron makes is checked now as a scheduled run would be: its input's shape, its webhook."""
    if run.get("webhook"):
        checked_webhook(run["webhook"])
    if run.get("input") is not None:
        await checked_input(pool, model_id, user, run["input"], scheduled=True)


async def _create(
    pool: Pool, user: User, body: CronCreate, thread_id: UUID | None, model_id: int
) -> dict[str, Any]:
    try:
        checked_schedule(body.schedule, body.timezone)
    except InvalidCron as exc:
        raise _invalid(exc) from exc
    end_time = _end(body.end_time)
    if end_time is not None and end_time <= datetime.now(UTC):
        raise HTTPException(422, f"end_time {end_time.isoformat()} is in the past")
    run = body.model_dump(include=set(RUN_FIELDS), exclude_none=True)
    await _checked_run(pool, user, model_id, body, run)
    async with pool.connection() as conn:
        row = await insert_cron(
            conn,
            {
                "cron_id": uuid.uuid4(),
                "user_id": user.id,
                "assistant_id": body.assistant_id,
                "thread_id": thread_id,
                "model_id": model_id,
                "schedule": body.schedule,
                "timezone": body.timezone,
                "end_time": end_time,
                "enabled": body.enabled,
                "on_run_completed": body.on_run_completed,
                "payload": run,
                "metadata": body.metadata,
                "next_run_date": next_run(body.schedule, body.timezone, datetime.now(UTC), end_time),
            },
        )
    return cron_json(row)


@router.post("/threads/{thread_id}/runs/crons")
async def create_for_thread(
    thread_id: UUID, body: CronCreate, user: CurrentUser, pool: PoolDep
) -> dict[str, Any]:
    """A schedule of runs on one of your threads (its bot trades each run)."""
    thread = await owned_thread(pool, thread_id, user)
    if thread["model_id"] is None:
        raise HTTPException(
            422, "this thread has no model: create it with metadata.model_id to schedule sessions"
        )
    return await _create(pool, user, body, thread_id, thread["model_id"])


@router.post("/runs/crons")
async def create(body: CronCreate, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """A schedule of runs, each on a new thread for the bot in `metadata.model_id`."""
    raw = body.metadata.get("model_id")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise HTTPException(
            422, "metadata.model_id: a cron without a thread needs the id of one of your bots"
        )
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=int(raw), user_id=user.id)
    if model is None:
        raise HTTPException(404, f"model {raw} not found")
    return await _create(pool, user, body, None, model["id"])


@router.post("/runs/crons/search")
async def search(body: CronSearch, user: CurrentUser, pool: PoolDep) -> list[dict[str, Any]]:
    """Your crons matching the filters."""
    async with pool.connection() as conn:
        rows = await search_crons(
            conn,
            user_id=user.id,
            assistant_id=body.assistant_id,
            thread_id=body.thread_id,
            enabled=body.enabled,
            metadata=body.metadata,
            sort_by=body.sort_by,
            sort_order=body.sort_order,
            limit=body.limit,
            offset=body.offset,
        )
    return [cron_json(r, body.select) for r in rows]


@router.post("/runs/crons/count")
async def count(body: CronCount, user: CurrentUser, pool: PoolDep) -> int:
    """How many of your crons match."""
    async with pool.connection() as conn:
        return await count_crons(
            conn,
            user_id=user.id,
            assistant_id=body.assistant_id,
            thread_id=body.thread_id,
            metadata=body.metadata,
        )


@router.patch("/runs/crons/{cron_id}")
async def patch(cron_id: UUID, body: CronPatch, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """Change a cron: its schedule, time zone, end (`end_time: null` clears it), run request, or pause it."""
    given = body.model_fields_set
    async with pool.connection() as conn, conn.transaction():
        cron = await get_cron(conn, cron_id=cron_id, user_id=user.id, lock=True)
        if cron is None:
            raise HTTPException(404, f"cron {cron_id} not found")
        schedule, timezone = body.schedule or cron["schedule"], body.timezone or cron["timezone"]
        try:
            checked_schedule(schedule, timezone)
        except InvalidCron as exc:
            raise _invalid(exc) from exc
        end_time = _end(body.end_time) if "end_time" in given else cron["end_time"]
        run = {**cron["payload"], **body.model_dump(include=set(RUN_FIELDS) & given, exclude_none=True)}
        await _checked_run(pool, user, cron["model_id"], body, run)
        enabled = cron["enabled"] if body.enabled is None else body.enabled
        timing_changed = given & {"schedule", "timezone", "end_time", "enabled"}
        upcoming = (
            next_run(schedule, timezone, datetime.now(UTC), end_time)
            if timing_changed
            else cron["next_run_date"]
        )
        row = await update_cron(
            conn,
            {
                "cron_id": cron_id,
                "schedule": schedule,
                "timezone": timezone,
                "end_time": end_time,
                "enabled": enabled,
                "on_run_completed": body.on_run_completed or cron["on_run_completed"],
                "payload": run,
                "metadata": cron["metadata"]
                if body.metadata is None
                else {**cron["metadata"], **body.metadata},
                "next_run_date": upcoming,
            },
        )
    return cron_json(row)


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete(cron_id: UUID, user: CurrentUser, pool: PoolDep) -> Response:
    """Delete a cron: it starts no more runs (runs already started go on)."""
    async with pool.connection() as conn:
        if not await delete_cron(conn, cron_id=cron_id, user_id=user.id):
            raise HTTPException(404, f"cron {cron_id} not found")
    return Response(status_code=204)
