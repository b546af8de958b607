"""LangGraph crons: schedules that start runs, stored per user, fired exactly once per due time.

A cron is a row (`crons`) with its 5-field schedule, IANA time zone and the run request to make.
Every 5 seconds one worker (a procrastinate periodic job, deferred once per tick whatever the number
of processes) takes each due cron under a row lock, records the due time in `cron_fires` with the
run id and thread id it is about to use (the table's key makes a due time fire once), moves
`next_run_date` on, commits, then starts the run with those ids. A process that dies between the
commit and the start leaves a `pending` fire, which the next tick starts with the same ids (the run
id is the runs table's key, so it is never started twice). Due times missed while no worker ran
(a restart) fire once when one runs again; earlier missed ones of the same cron are skipped.

A thread cron runs on its thread; a cron without one (`POST /runs/crons`) makes a new thread per
run, bound to the bot named by `metadata.model_id`.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from fastapi import HTTPException
from langgraph.graph.state import CompiledStateGraph
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from server.runs.create import create_run
from server.runs.lifecycle import RunLifecycle
from server.schemas import RunCreate
from server.store import threads as thread_store
from tradegraph.accounts import User, user_profile
from tradegraph.database import Pool

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "America/New_York"
OnRunCompleted = Literal["keep", "delete"]
DELETE_AFTER_MINUTES = 1
"""`on_run_completed: delete` gives the cron's thread this TTL: the retention sweep deletes it once
the run has ended (a busy thread is never swept)."""
PENDING_RETRY_S = 30
INSERT_CRON = """
INSERT INTO crons (cron_id, user_id, assistant_id, thread_id, model_id, schedule, timezone, end_time,
                   enabled, on_run_completed, payload, metadata, next_run_date)
VALUES (%(cron_id)s, %(user_id)s, %(assistant_id)s, %(thread_id)s, %(model_id)s, %(schedule)s,
        %(timezone)s, %(end_time)s, %(enabled)s, %(on_run_completed)s, %(payload)s, %(metadata)s,
        %(next_run_date)s)
RETURNING *
"""
SELECT_CRON = "SELECT * FROM crons WHERE cron_id = %s AND user_id = %s"
LOCK_CRON = "SELECT * FROM crons WHERE cron_id = %s AND user_id = %s FOR UPDATE"
UPDATE_CRON = """
UPDATE crons SET schedule = %(schedule)s, timezone = %(timezone)s, end_time = %(end_time)s,
                 enabled = %(enabled)s, on_run_completed = %(on_run_completed)s, payload = %(payload)s,
                 metadata = %(metadata)s, next_run_date = %(next_run_date)s, updated_at = now()
WHERE cron_id = %(cron_id)s RETURNING *
"""
DELETE_CRON = "DELETE FROM crons WHERE cron_id = %s AND user_id = %s RETURNING cron_id"
TAKE_DUE = """
SELECT * FROM crons WHERE enabled AND next_run_date <= now()
ORDER BY next_run_date LIMIT 1 FOR UPDATE SKIP LOCKED
"""
INSERT_FIRE = """
INSERT INTO cron_fires (cron_id, due_at, run_id, thread_id, outcome) VALUES (%s, %s, %s, %s, 'pending')
ON CONFLICT DO NOTHING RETURNING *
"""
MOVE_ON = "UPDATE crons SET next_run_date = %s, updated_at = now() WHERE cron_id = %s"
TAKE_PENDING = f"""
SELECT f.*, c.user_id FROM cron_fires f JOIN crons c USING (cron_id)
WHERE f.outcome = 'pending' AND f.created_at < now() - interval '{PENDING_RETRY_S} seconds'
LIMIT 20 FOR UPDATE OF f SKIP LOCKED
"""
SET_OUTCOME = "UPDATE cron_fires SET outcome = %s WHERE cron_id = %s AND due_at = %s"
RUN_EXISTS = "SELECT 1 FROM runs WHERE run_id = %s"
SortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"
]
"""The columns crons can be sorted by."""
CronField = Literal[
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "payload",
    "user_id",
    "next_run_date",
    "metadata",
    "enabled",
]
"""The fields of a cron object, in the protocol's order (what `select` may name)."""
SORTABLE: tuple[SortBy, ...] = get_args(SortBy)
CRON_FIELDS: tuple[CronField, ...] = get_args(CronField)


class InvalidCron(ValueError):
    """A schedule or time zone that cannot be used; the message names it."""


def checked_schedule(schedule: str, timezone: str) -> None:
    """A 5-field cron expression and an IANA time zone, or InvalidCron naming the problem."""
    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        raise InvalidCron(
            f"schedule must be a 5-field cron expression (minute hour day month weekday), got {schedule!r}"
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCron(
            f"timezone must be an IANA time zone such as {DEFAULT_TIMEZONE}, got {timezone!r}"
        ) from None


def next_run(schedule: str, timezone: str, after: datetime, end_time: datetime | None) -> datetime | None:
    """The first due time strictly after `after` in the cron's time zone (UTC), or None past `end_time`."""
    local = after.astimezone(ZoneInfo(timezone))
    due: datetime = croniter(schedule, local).get_next(datetime)
    due = due.astimezone(UTC)
    return None if end_time is not None and due > end_time else due


def cron_json(row: dict[str, Any], select: list[CronField] | None = None) -> dict[str, Any]:
    """A crons row as the protocol shows it (only the `select`ed fields when given)."""
    shown: dict[str, Any] = {}
    for field in select or CRON_FIELDS:
        value = row.get(field)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, UUID) or field == "user_id" and value is not None:
            value = str(value)
        shown[field] = value
    return shown


async def insert_cron(conn: AsyncConnection[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Store a new cron (`values` as INSERT_CRON names them)."""
    params = {**values, "payload": Jsonb(values["payload"]), "metadata": Jsonb(values["metadata"])}
    row = await (await conn.execute(INSERT_CRON, params)).fetchone()
    assert row is not None
    return dict(row)


async def get_cron(
    conn: AsyncConnection[Any], *, cron_id: UUID, user_id: int, lock: bool = False
) -> dict[str, Any] | None:
    """The user's cron, or None (another user's cron is None too)."""
    row = await (await conn.execute(LOCK_CRON if lock else SELECT_CRON, (cron_id, user_id))).fetchone()
    return dict(row) if row else None


async def update_cron(conn: AsyncConnection[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Replace a cron's settings (all of UPDATE_CRON's fields)."""
    params = {**values, "payload": Jsonb(values["payload"]), "metadata": Jsonb(values["metadata"])}
    row = await (await conn.execute(UPDATE_CRON, params)).fetchone()
    assert row is not None
    return dict(row)


async def delete_cron(conn: AsyncConnection[Any], *, cron_id: UUID, user_id: int) -> bool:
    """Delete the user's cron; False when there is none."""
    return await (await conn.execute(DELETE_CRON, (cron_id, user_id))).fetchone() is not None


def _filters(
    user_id: int,
    assistant_id: str | None,
    thread_id: UUID | None,
    enabled: bool | None,
    metadata: dict[str, Any],
) -> tuple[str, list[Any]]:
    clauses, params = ["user_id = %s"], list[Any]([user_id])
    if assistant_id is not None:
        clauses.append("assistant_id = %s")
        params.append(assistant_id)
    if thread_id is not None:
        clauses.append("thread_id = %s")
        params.append(thread_id)
    if enabled is not None:
        clauses.append("enabled = %s")
        params.append(enabled)
    if metadata:
        clauses.append("metadata @> %s")
        params.append(Jsonb(metadata))
    return " AND ".join(clauses), params


async def search_crons(
    conn: AsyncConnection[Any],
    *,
    user_id: int,
    assistant_id: str | None = None,
    thread_id: UUID | None = None,
    enabled: bool | None = None,
    metadata: dict[str, Any] | None = None,
    sort_by: SortBy = "created_at",
    sort_order: Literal["asc", "desc"] = "desc",
    limit: int = 10,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The user's crons matching the filters, sorted (by a known column only) and paged."""
    where, params = _filters(user_id, assistant_id, thread_id, enabled, metadata or {})
    assert sort_by in SORTABLE and sort_order in ("asc", "desc")
    sql = f"SELECT * FROM crons WHERE {where} ORDER BY {sort_by} {sort_order}, cron_id LIMIT %s OFFSET %s"
    return [dict(r) for r in await (await conn.execute(sql, [*params, limit, offset])).fetchall()]


async def count_crons(
    conn: AsyncConnection[Any],
    *,
    user_id: int,
    assistant_id: str | None = None,
    thread_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> int:
    """How many of the user's crons match."""
    where, params = _filters(user_id, assistant_id, thread_id, None, metadata or {})
    row = await (await conn.execute(f"SELECT count(*) AS n FROM crons WHERE {where}", params)).fetchone()
    return int(row["n"]) if row else 0


@dataclass(frozen=True)
class Fire:
    """One due time of one cron, and the ids its run gets."""

    cron: dict[str, Any]
    due_at: datetime
    run_id: UUID
    thread_id: UUID


class CronScheduler:
    """Starts the runs of due crons (called by the periodic cron tick on one worker at a time)."""

    def __init__(
        self, pool: Pool, graph: CompiledStateGraph[Any, Any, Any, Any], lifecycle: RunLifecycle
    ) -> None:
        self.pool, self.graph, self.lifecycle = pool, graph, lifecycle

    async def fire_due(self) -> int:
        """Start a run for every due cron, and finish fires a dead process left pending; returns how many."""
        started = 0
        while (fire := await self._take_due()) is not None:
            started += await self._start(fire)
        for fire in await self._pending():
            started += await self._start(fire)
        return started

    async def _take_due(self) -> Fire | None:
        async with self.pool.connection() as conn, conn.transaction():
            cron = await (await conn.execute(TAKE_DUE)).fetchone()
            if cron is None:
                return None
            due = cron["next_run_date"]
            upcoming = next_run(
                cron["schedule"], cron["timezone"], max(due, datetime.now(UTC)), cron["end_time"]
            )
            await conn.execute(MOVE_ON, (upcoming, cron["cron_id"]))
            run_id, thread_id = uuid.uuid4(), cron["thread_id"] or uuid.uuid4()
            fire = await (
                await conn.execute(INSERT_FIRE, (cron["cron_id"], due, run_id, thread_id))
            ).fetchone()
        if fire is None:  # recorded before (the due time was moved back by hand): nothing to start
            return await self._take_due()
        return Fire(dict(cron), due, run_id, thread_id)

    async def _pending(self) -> list[Fire]:
        """Fires a stopped process recorded but may not have started: those without a run are
        started again with their ids; those with one are marked started."""
        again: list[Fire] = []
        async with self.pool.connection() as conn, conn.transaction():
            for fire in await (await conn.execute(TAKE_PENDING)).fetchall():
                cron = await get_cron(conn, cron_id=fire["cron_id"], user_id=fire["user_id"])
                if (
                    cron is not None
                    and not await (await conn.execute(RUN_EXISTS, (fire["run_id"],))).fetchone()
                ):
                    log.warning(
                        "cron %s: starting the run of %s left pending", fire["cron_id"], fire["due_at"]
                    )
                    again.append(Fire(cron, fire["due_at"], fire["run_id"], fire["thread_id"]))
                else:
                    await conn.execute(SET_OUTCOME, ("started", fire["cron_id"], fire["due_at"]))
        return again

    async def _start(self, fire: Fire) -> int:
        """Start the fire's run; records `started`, or `failed: why` (the cron itself keeps going)."""
        cron, payload = fire.cron, fire.cron["payload"]
        try:
            async with self.pool.connection() as conn:
                owner = await user_profile(conn, user_id=cron["user_id"])  # a cron goes with its user
                user = User(id=owner["id"], name=owner["name"], is_admin=owner["is_admin"])
                if cron["thread_id"] is None:
                    ttl = (
                        thread_store.ThreadTTL(DELETE_AFTER_MINUTES, "delete")
                        if cron["on_run_completed"] == "delete"
                        else None
                    )
                    await thread_store.create_thread(
                        conn,
                        thread_id=fire.thread_id,
                        user_id=user.id,
                        model_id=cron["model_id"],
                        metadata={"model_id": cron["model_id"], "cron_id": str(cron["cron_id"])},
                        ttl=ttl,
                    )
            body = RunCreate.model_validate(
                {**payload, "metadata": {**payload.get("metadata", {}), "cron_id": str(cron["cron_id"])}}
            )
            await create_run(self, fire.thread_id, user, body, run_id=fire.run_id, scheduled=True)
            outcome = "started"
        except HTTPException as exc:
            outcome = f"failed: {exc.detail}"
            log.warning("cron %s could not start its run of %s: %s", cron["cron_id"], fire.due_at, exc.detail)
        async with self.pool.connection() as conn:
            await conn.execute(SET_OUTCOME, (outcome, cron["cron_id"], fire.due_at))
        return int(outcome == "started")
