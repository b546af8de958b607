"""Follow a run from its stored events: SSE streams (with rejoin) and waiting for the result.

Following never hangs forever: a run that nothing will execute (no live worker anywhere for
`stuck_after_s`, or a database that stays unreachable) ends the stream or the wait with an error
that says why. The run itself stays queued and continues when a worker comes back.
"""

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from sse_starlette import ServerSentEvent

from graph.config import thread_config
from server.runs.events import EVENTS_PER_READ, events_after
from server.runs.notifier import Mark, StoredEvent
from server.serialization import dumps
from server.services import RunServices
from server.state_json import final_values
from server.store import runs as run_store
from server.store.runs import ACTIVE, RunRow
from tradegraph.database import is_disconnect, retrying
from tradegraph.settings import get_settings

T = TypeVar("T")
TERMINAL = ("end", "error")
WAKE_EVERY_S = 5.0
GRACE_FOR_END_S = 5.0
"""How long a stream waits for the worker's final event after a run was marked finished."""
CHECK_WORKERS_EVERY_S = 5.0


class RunStuck(Exception):
    """Nothing can make progress on the run; the message says why."""


class ProgressWatch:
    """Notices when no live worker exists (in any process) for longer than `stuck_after_s`."""

    def __init__(self, services: RunServices) -> None:
        self.services, self.limit = services, get_settings().stuck_after_s
        self._no_worker_since: float | None = None
        self._checked = asyncio.get_running_loop().time()  # a run that finishes quickly costs no check

    async def check(self, run_id: UUID) -> None:
        """Raise RunStuck once the run has had no live worker for too long."""
        now = asyncio.get_running_loop().time()
        if now - self._checked < CHECK_WORKERS_EVERY_S:
            return
        self._checked = now
        if await _read("live workers", self.services.census.live):
            self._no_worker_since = None
            return
        self._no_worker_since = self._no_worker_since or now
        if now - self._no_worker_since >= self.limit:
            raise RunStuck(
                f"run {run_id} cannot progress: no live run worker has sent a heartbeat for "
                f"{self.limit:.0f} s (start `tradegraph serve` or `tradegraph worker`); it stays queued"
            )


async def _read(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """A database read that rides out a restart, or RunStuck when the database stays away."""
    try:
        return await retrying(call, what=what)
    except Exception as exc:
        if is_disconnect(exc):
            raise RunStuck(f"the database is unreachable ({type(exc).__name__}: {exc})") from exc
        raise


async def _run(services: RunServices, run_id: UUID) -> RunRow | None:
    async def read() -> RunRow | None:
        async with services.pool.connection() as conn:
            return await run_store.get_run(conn, run_id=run_id)

    return await _read(f"follow run {run_id}", read)


def _sse_event(row: StoredEvent) -> ServerSentEvent:
    return ServerSentEvent(data=dumps(row["data"]), event=row["event"], id=str(row["seq"]))


def _error_event(exc: RunStuck, seq: int) -> ServerSentEvent:
    return ServerSentEvent(data=dumps({"error": "RunStuck", "message": str(exc)}), event="error", id=str(seq))


async def run_events(
    services: RunServices,
    run_id: UUID,
    *,
    after: int = 0,
    modes: set[str] | None = None,
    created: Mark | None = None,
) -> AsyncIterator[list[ServerSentEvent]]:
    """Stored events after `after`, then live ones, until the run's final `end` or `error`, in the
    batches they arrive in (one write to the client per batch, not per event).

    The waiter is registered before the first read and kept to the end, so nothing stored after a
    read is missed. Batches stored by this process arrive with their wake-up and are sent without a
    read; a wake-up for anything else reads the database once, and the run's status is only read
    when a read finds no new events. A run this request created (`created`: the notifier's mark
    from before) is not read at first if no news of it has arrived since: it is pending, with no
    events.
    """
    seq, finished_at, watch = after, None, ProgressWatch(services)
    loop = asyncio.get_running_loop()

    async def stored() -> list[StoredEvent]:
        read = functools.partial(events_after, services.pool, str(run_id), seq)
        return await _read(f"events of run {run_id}", read)

    try:
        with services.notifier.waiter(str(run_id)) as wake:
            rows: list[StoredEvent] | None = None  # None: read the database
            if created is not None and services.notifier.quiet_since(str(run_id), created):
                rows = []  # nothing stored yet, and the run is pending
            while True:
                from_database = rows is None
                rows = await stored() if rows is None else rows
                batch, ended = [], False
                for row in rows:
                    seq = row["seq"]
                    if modes is None or row["event"] in (*modes, *TERMINAL, "metadata"):
                        batch.append(_sse_event(row))
                    if ended := row["event"] in TERMINAL:
                        break
                if batch:
                    yield batch
                if ended:
                    return
                if from_database and len(rows) == EVENTS_PER_READ:
                    rows = None  # more are stored already
                    continue
                if from_database and not rows:  # nothing new: is the run still going?
                    run = await _run(services, run_id)
                    if run is None:  # rolled back: the run and its events are gone
                        yield [ServerSentEvent(data="null", event="end", id=str(seq + 1))]
                        return
                    if run["status"] in ACTIVE:
                        await watch.check(run_id)
                    else:
                        finished_at = finished_at or loop.time()
                        if loop.time() - finished_at > GRACE_FOR_END_S:
                            yield [ServerSentEvent(data="null", event="end", id=str(seq + 1))]
                            return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=1.0 if finished_at else WAKE_EVERY_S)
                rows = wake.take_after(seq)
    except RunStuck as exc:
        yield [_error_event(exc, seq + 1)]


async def wait_until_done(
    services: RunServices, run_id: UUID, *, created: Mark | None = None
) -> RunRow | None:
    """Block until the run is no longer pending or running; its row (None if rolled back), or RunStuck.

    The run is read again on a change of its status (finishing, cancelling and rolling back notify
    it) or every `WAKE_EVERY_S`; the stream of its events does not wake the wait. A run finished by
    this process comes with its final row and is not read; one this request created (`created`, as
    for `run_events`) is not read before its first change.
    """
    watch, loop = ProgressWatch(services), asyncio.get_running_loop()
    with services.notifier.waiter(str(run_id)) as wake:
        pending = created is not None and services.notifier.quiet_since(str(run_id), created)
        while True:
            if not pending:
                run = wake.take_finished() or await _run(services, run_id)
                if run is None or run["status"] not in ACTIVE:
                    return run
                await watch.check(run_id)
            pending = False
            deadline = loop.time() + WAKE_EVERY_S
            while not wake.take_change() and (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=left)


async def run_result(services: RunServices, run: RunRow | None, thread_id: UUID) -> dict[str, Any]:
    """What /wait and /join return: `__error__`, or the final state with `__interrupt__` when paused."""
    if run is not None and run["status"] == "error":
        return {"__error__": run["error"]}
    if run is not None and run["result"] is not None:
        return dict(run["result"])
    snapshot = await services.graph.aget_state(thread_config(thread_id))
    return final_values(snapshot)
