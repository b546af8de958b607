"""Follow a run from its stored events: SSE streams (with rejoin) and waiting for the result."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from sse_starlette import ServerSentEvent

from graph.config import thread_config
from server.runs.events import events_after
from server.serialization import dumps
from server.services import RunServices
from server.state_json import final_values
from server.store import runs as run_store
from server.store.runs import ACTIVE, RunRow

TERMINAL = ("end", "error")
WAKE_EVERY_S = 5.0
GRACE_FOR_END_S = 5.0
"""How long a stream waits for the worker's final event after a run was marked finished."""


async def _run_status(services: RunServices, run_id: UUID) -> str | None:
    async with services.pool.connection() as conn:
        run = await run_store.get_run(conn, run_id=run_id)
    return run["status"] if run else None


async def run_events(
    services: RunServices, run_id: UUID, *, after: int = 0, modes: set[str] | None = None
) -> AsyncIterator[ServerSentEvent]:
    """Stored events after `after`, then live ones, until the run's final `end` or `error`."""
    seq, finished_at = after, None
    while True:
        with services.notifier.waiter(str(run_id)) as woke:
            rows = await events_after(services.pool, str(run_id), seq)
            for row in rows:
                seq = row["seq"]
                if (
                    modes is None
                    or row["event"] in modes
                    or row["event"] in TERMINAL
                    or row["event"] == "metadata"
                ):
                    yield ServerSentEvent(data=dumps(row["data"]), event=row["event"], id=str(seq))
                if row["event"] in TERMINAL:
                    return
            if rows:
                continue
            status = await _run_status(services, run_id)
            if status is None:  # rolled back: the run and its events are gone
                yield ServerSentEvent(data="null", event="end", id=str(seq + 1))
                return
            if status not in ACTIVE:
                loop = asyncio.get_running_loop()
                finished_at = finished_at or loop.time()
                if loop.time() - finished_at > GRACE_FOR_END_S:
                    yield ServerSentEvent(data="null", event="end", id=str(seq + 1))
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), timeout=1.0 if finished_at else WAKE_EVERY_S)


async def wait_until_done(services: RunServices, run_id: UUID) -> RunRow | None:
    """Block until the run is no longer pending or running; returns its row (None if rolled back)."""
    while True:
        with services.notifier.waiter(str(run_id)) as woke:
            async with services.pool.connection() as conn:
                run = await run_store.get_run(conn, run_id=run_id)
            if run is None or run["status"] not in ACTIVE:
                return run
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), timeout=WAKE_EVERY_S)


async def run_result(services: RunServices, run: RunRow | None, thread_id: UUID) -> dict[str, Any]:
    """What /wait and /join return: `__error__`, or the final state with `__interrupt__` when paused."""
    if run is not None and run["status"] == "error":
        return {"__error__": run["error"]}
    if run is not None and run["result"] is not None:
        return dict(run["result"])
    snapshot = await services.graph.aget_state(thread_config(thread_id))
    return final_values(snapshot)
