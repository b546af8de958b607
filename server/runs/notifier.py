"""Wake-ups across processes: one LISTEN connection per process, fanned out to local waiters.

Writers call `notify(conn, run_id)` after changing a run's status; a stored batch of events
notifies `run_id:last_seq` (`events_payload`). Readers register with `waiter(run_id)` *before*
reading the database, then wait on it, so nothing written between their read and their wait is
missed.

A batch stored by this process is also handed to this process's waiters (`deliver`), so a stream
served by the process that runs the graph follows it without reading the events back; the
writer announces each batch before storing it (`storing`), so the batch's own NOTIFY, which may
arrive before the hand-over, wakes nobody here. Events stored by another process, or any other
change, make the waiter read the database. A run finished by this process is handed over the same
way (`finishing`, then `finished` with the run's final row), so a wait for it reads nothing.

A follower of a run its own request has just created may skip its first read: `mark()` before the
run is created, then, with the waiter registered, `quiet_since(run_id, mark)` says whether any news
of the run reached this process meanwhile (it remembers runs whose news found no waiter).
"""

import asyncio
import contextlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import psycopg
from typing_extensions import TypedDict

from server.store.runs import RunRow

log = logging.getLogger(__name__)

CHANNEL = "tradegraph_runs"
"""The one NOTIFY channel: every write that a follower may wait for notifies it with the run id."""
NOTIFY = "SELECT pg_notify(%s, %s)"
UNHEARD_MEMORY = 10_000
"""How many runs whose news reached no waiter here are remembered, for `quiet_since`."""


class StoredEvent(TypedDict):
    """One SSE event of a run: its sequence number (the SSE id), name and JSON data."""

    seq: int
    event: str
    data: Any


FINISHED = "finished"


def finished_payload(run_id: str) -> str:
    """The NOTIFY payload of a run's end (lifecycle's FINISH_RUN)."""
    return f"{run_id}:{FINISHED}"


def events_payload(run_id: str, last_seq: int) -> str:
    """The NOTIFY payload of a stored batch: the run and the highest sequence number stored."""
    return f"{run_id}:{last_seq}"


class Wake:
    """What reached one waiter since it last looked: a flag to wait on, and what the news was."""

    def __init__(self) -> None:
        self._flag = asyncio.Event()
        self._events: list[StoredEvent] = []
        self._stored_up_to = 0
        self._changed = False
        self._finished: RunRow | None = None

    async def wait(self) -> None:
        """Until something about the run has changed since the last `take_after`."""
        await self._flag.wait()

    def take_after(self, seq: int) -> list[StoredEvent] | None:
        """The events after `seq` that this process stored, if they are all the news; else None.

        None means "read the database": nothing arrived (a timed-out wait), the run changed in
        another way, or another process stored events this waiter was not handed. The news is
        cleared either way.
        """
        news, changed, up_to = self._flag.is_set(), self._changed, self._stored_up_to
        fresh = [e for e in self._clear() if e["seq"] > seq]
        if not news or changed:
            return None
        if fresh and (fresh[0]["seq"] != seq + 1 or fresh[-1]["seq"] - seq != len(fresh)):
            return None  # not contiguous with what the reader has: another writer stored some
        return fresh if up_to <= (fresh[-1]["seq"] if fresh else seq) else None

    def take_change(self) -> bool:
        """Whether the run changed in a way other than stored events (its status, or this process
        finished it) since the last look.

        Clears the news. A lost LISTEN connection counts as a change: anything may have happened.
        """
        changed = self._changed or self._finished is not None
        self._clear()
        return changed

    def take_finished(self) -> RunRow | None:
        """The run's final row, when this process finished it since the waiter was registered."""
        return self._finished

    def _clear(self) -> list[StoredEvent]:
        """Forget the news; the events handed over since the last look."""
        events = self._events
        self._flag.clear()
        self._events, self._changed = [], False
        return events

    def announce(self, last_seq: int | None) -> None:
        """A notification: events stored up to `last_seq`, or (None) some other change."""
        if last_seq is None:
            self._changed = True
        else:
            self._stored_up_to = max(self._stored_up_to, last_seq)
        self._flag.set()

    def hand(self, events: Sequence[StoredEvent]) -> None:
        """A batch this process stored: kept for `take_after`, and announced."""
        self._events.extend(events)
        self.announce(events[-1]["seq"])

    def hand_finished(self, run: RunRow | None) -> None:
        """This process finished the run (`run`: its final row; a stream waits for the `end` event
        that follows), or tried to (None: a change, read the run)."""
        if run is None:
            self.announce(None)
        else:
            self._finished = run
            self._flag.set()


class Mark(NamedTuple):
    """Where the notifier was when a follower began: its LISTEN connection and its memory."""

    connections: int
    forgotten: int


async def notify(conn: psycopg.AsyncConnection[Any], run_id: str) -> None:
    """Tell every process that something about `run_id` changed."""
    await conn.execute(NOTIFY, (CHANNEL, str(run_id)))


class Notifier:
    """Holds the LISTEN connection and the per-run waiters of this process."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._waiters: dict[str, set[Wake]] = defaultdict(set)
        self._storing: dict[str, int] = {}
        self._finishing: set[str] = set()
        self._finished_here: OrderedDict[str, None] = OrderedDict()
        self._unheard: OrderedDict[str, None] = OrderedDict()
        self._forgotten = 0
        self._connections = 0
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
    def waiter(self, run_id: str) -> Iterator[Wake]:
        """A `Wake` that gathers every notification for `run_id` while the block is open."""
        wake = Wake()
        self._waiters[str(run_id)].add(wake)
        try:
            yield wake
        finally:
            self._waiters[str(run_id)].discard(wake)
            if not self._waiters[str(run_id)]:
                self._waiters.pop(str(run_id), None)

    def mark(self) -> Mark:
        """Take before creating a run whose follower may skip its first read (`quiet_since`)."""
        return Mark(self._connections if self._ready.is_set() else -1, self._forgotten)

    def quiet_since(self, run_id: str, mark: Mark) -> bool:
        """Whether nothing about `run_id` can have reached this process, unseen by the waiter now
        registered, since `mark`: the LISTEN connection stayed up and no news of it found no waiter."""
        return (
            mark.connections == self._connections
            and self._ready.is_set()
            and mark.forgotten == self._forgotten
            and str(run_id) not in self._unheard
        )

    def storing(self, run_id: str, last_seq: int) -> None:
        """This process is storing a run's events up to `last_seq`: their NOTIFY wakes nobody here,
        since `deliver` hands the batch over (it may arrive before or after the NOTIFY)."""
        self._storing[str(run_id)] = max(self._storing.get(str(run_id), 0), last_seq)

    def deliver(self, run_id: str, events: Sequence[StoredEvent]) -> None:
        """Hand a batch this process has just stored (committed, in order) to its waiters."""
        if events:
            for wake in self._waiting_for(str(run_id)):
                wake.hand(events)

    def stopped_storing(self, run_id: str) -> None:
        """The run's writer in this process is done (a later NOTIFY of it wakes waiters again)."""
        self._storing.pop(str(run_id), None)

    def finishing(self, run_id: str) -> None:
        """This process is finishing the run: the NOTIFY of its end wakes nobody here, since
        `finished` hands the final row over (the NOTIFY may arrive before or after)."""
        self._finishing.add(str(run_id))

    def finished(self, run_id: str, run: RunRow | None) -> None:
        """The run's final row (None: it was not finished here after all, so waiters read it);
        a change for every waiter either way."""
        self._finishing.discard(str(run_id))
        if run is not None:
            self._finished_here[str(run_id)] = None  # until its NOTIFY arrives
            if len(self._finished_here) > UNHEARD_MEMORY:  # NOTIFYs lost while reconnecting
                self._finished_here.popitem(last=False)
        for wake in self._waiting_for(str(run_id)):
            wake.hand_finished(run)

    def _waiting_for(self, run_id: str) -> set[Wake] | tuple[()]:
        """The run's waiters; news that finds none is remembered for `quiet_since`."""
        if wakes := self._waiters.get(run_id):
            return wakes
        self._unheard[run_id] = None
        self._unheard.move_to_end(run_id)
        if len(self._unheard) > UNHEARD_MEMORY:
            self._unheard.popitem(last=False)
            self._forgotten += 1
        return ()

    def _wake(self, payload: str) -> None:
        run_id, _, tail = payload.partition(":")
        if tail == FINISHED:
            if run_id in self._finishing or run_id in self._finished_here:
                self._finished_here.pop(run_id, None)
                return  # finished by this process: `finished` tells the waiters
            tail = ""
        if tail and int(tail) <= self._storing.get(run_id, 0):
            return  # stored by this process: handed over by `deliver`
        for wake in self._waiting_for(run_id):
            wake.announce(int(tail) if tail else None)

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._connections += 1
                    self._ready.set()
                    self._wake_all()  # anything missed while reconnecting: readers re-check
                    async for message in conn.notifies():
                        self._wake(message.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._ready.clear()
                log.exception("run notifier lost its connection; reconnecting")
                await asyncio.sleep(1)

    def _wake_all(self) -> None:
        for wakes in self._waiters.values():
            for wake in wakes:
                wake.announce(None)
