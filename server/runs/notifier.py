"""Wake-ups across processes: one LISTEN connection per process, fanned out to local waiters.

Writers call `notify(conn, run_id)` after storing events or changing a run's status; readers
register with `waiter(run_id)` *before* reading the database, then wait on it, so nothing
written between their read and their wait is missed.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "tradegraph_runs"
"""The one NOTIFY channel: every write that a follower may wait for notifies it with the run id."""
NOTIFY = "SELECT pg_notify(%s, %s)"


async def notify(conn: psycopg.AsyncConnection[Any], run_id: str) -> None:
    """Tell every process that something about `run_id` changed."""
    await conn.execute(NOTIFY, (CHANNEL, str(run_id)))


class Notifier:
    """Holds the LISTEN connection and the per-run waiters of this process."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Begin listening (returns once the LISTEN is in place)."""
        self._task = asyncio.create_task(self._listen(), name="run-notifier")
        await asyncio.wait_for(self._ready.wait(), timeout=30)

    async def stop(self) -> None:
        """Stop listening."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def waiter(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set on the next notification for `run_id` while the block is open."""
        event = asyncio.Event()
        self._waiters[str(run_id)].add(event)
        try:
            yield event
        finally:
            self._waiters[str(run_id)].discard(event)
            if not self._waiters[str(run_id)]:
                self._waiters.pop(str(run_id), None)

    def _wake(self, run_id: str) -> None:
        for event in self._waiters.get(run_id, ()):
            event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    self._wake_all()  # anything missed while reconnecting: readers re-check
                    async for message in conn.notifies():
                        self._wake(message.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("run notifier lost its connection; reconnecting")
                await asyncio.sleep(1)

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()
