"""Execute one run: stream the graph, store its events, honour cancellation; statuses via the lifecycle.

A run executed again (its worker died and the job was retried, a worker handed it back on SIGTERM,
or the database went away mid-run) keeps its `run_id`: LangGraph treats that as re-entry into the
ongoing run and continues from the run's last checkpoint. A run that already got somewhere is
continued with no payload, so a consumed `command.resume` is never sent twice; `execute`'s
idempotent client order ids and the nodes' as-of-bar ledger reads keep fills exactly-once and
decisions the same.
"""

import asyncio
import logging
import time
from typing import Any, Protocol
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from graph.checkpointer import ResilientPostgresSaver, batched_saves
from graph.config import run_config, thread_config
from graph.context import SessionContext
from server import metrics
from server.runs.events import EventStore, EventWriter, LocalFeed, first_seq
from server.runs.job import RunJob
from server.runs.lifecycle import RunLifecycle
from server.runs.priority import FirstBars, Newcomer
from server.runs.translate import graph_modes, to_events
from server.store import runs as run_store
from server.store.runs import RunRow
from tradegraph.database import Pool, is_disconnect

log = logging.getLogger(__name__)

DELETE_CANCELLED_WRITES = """
DELETE FROM checkpoint_writes
WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s AND task_id = ANY(%s)
"""
DELETE_COMMAND_ANSWER = """
DELETE FROM checkpoint_writes
WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s
  AND task_id = '00000000-0000-0000-0000-000000000000' AND channel = '__resume__'
"""
"""LangGraph keeps a `Command(resume=...)` value as a write of its null task on the `__resume__` channel."""
MAX_REENTRIES = 5
"""How many database outages one run may live through before it fails."""
SAFE_ERRORS = (ValueError, TypeError, KeyError, PermissionError, LookupError, RuntimeError, TimeoutError)


def error_body(exc: BaseException) -> dict[str, str]:
    """The protocol's error event: type and message (internal details only for expected errors)."""
    message = str(exc) if isinstance(exc, SAFE_ERRORS) else f"{type(exc).__name__}: {exc}"
    return {"error": type(exc).__name__, "message": message}


class RunEndListener(Protocol):
    """Told when a run has ended or paused (server/webhooks.py); must never raise."""

    async def run_ended(
        self, run: RunRow, *, error: dict[str, str] | None, snapshot: StateSnapshot | None
    ) -> None: ...


class RunExecutor:
    """Runs graphs for queued runs in this process."""

    def __init__(
        self,
        pool: Pool,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        lifecycle: RunLifecycle,
        webhooks: RunEndListener | None = None,
        feed: LocalFeed | None = None,
    ) -> None:
        """`feed` is handed each batch of events once stored (this process's followers)."""
        self.pool, self.graph, self.lifecycle, self.webhooks = pool, graph, lifecycle, webhooks
        self.feed = feed
        self.events = EventStore(pool)
        self.first_bars = FirstBars()

    async def execute(self, run_id: UUID) -> None:
        """Execute (or continue) one run to its end, cancellation or failure."""
        run = await self.lifecycle.start(run_id)
        if run is None:
            return  # cancelled before it started, or already finished
        first = await first_seq(self.pool, str(run_id), run["attempt"])
        writer = EventWriter(self.events, str(run_id), first, self.feed)
        writer.emit("metadata", {"run_id": str(run_id), "attempt": run["attempt"]})
        error, started = None, time.perf_counter()
        try:
            await self._stream_through_outages(run, writer)
        except asyncio.CancelledError:
            self._stop_tracking(run)
            await asyncio.shield(self._cancelled(run, writer))
            raise
        except Exception as exc:
            log.warning("run %s failed: %s", run_id, exc, exc_info=not isinstance(exc, SAFE_ERRORS))
            error = error_body(exc)
        try:  # the final state as this process just saved it (graph/last_saved.py)
            snapshot = None if error else await self._snapshot(run)  # the checkpointer retries its reads
        finally:
            self._stop_tracking(run)
        finished = await self._finish(run, error=error, snapshot=snapshot)  # before the last event
        if finished and self.webhooks is not None:
            await self.webhooks.run_ended(run, error=error, snapshot=snapshot)
        metrics.RUN_SECONDS.labels(outcome="error" if error else "success").observe(
            time.perf_counter() - started
        )
        if error:
            writer.emit("error", error)
        else:
            writer.emit("end", None)
        try:
            await writer.close()
        except Exception as exc:  # the run's status is final; followers end on it without these events
            log.warning("run %s: events not stored (%s)", run_id, exc)

    async def _finish(
        self, run: RunRow, *, error: dict[str, str] | None, snapshot: StateSnapshot | None
    ) -> RunRow | None:
        """Finish the run; this process's waiters get its final row instead of reading it."""
        finished = None
        if self.feed is not None:
            self.feed.finishing(str(run["run_id"]))
        try:
            finished = await self.lifecycle.finish(run, error=error, snapshot=snapshot)
        finally:
            if self.feed is not None:
                self.feed.finished(str(run["run_id"]), finished)
        return finished

    async def _stream_through_outages(self, run: RunRow, writer: EventWriter) -> None:
        """Stream the run; when the database goes away, wait for it and continue from the last checkpoint.

        Nodes retry their own database calls (graph/builder.py); this covers what happens between
        them (checkpoint writes). A re-entry with the same run id continues the run, and `execute`'s
        client order ids keep fills exactly-once. After MAX_REENTRIES, or when the database stays
        away longer than OUTAGE_BUDGET_S (the checkpointer's read gives up), the run fails.
        """
        snapshot: StateSnapshot | None = None  # read while waiting for the database: a re-entry
        for reentry in range(MAX_REENTRIES + 1):
            try:
                await self._stream(run, writer, after_outage=snapshot)
                return
            except Exception as exc:
                if not is_disconnect(exc) or reentry == MAX_REENTRIES:
                    raise
                log.warning("run %s lost the database (%s); continuing once it answers", run["run_id"], exc)
                metrics.database_error(f"run {run['run_id']}")
                self._stop_tracking(run)  # what was saved may be lost: read what the database kept
                snapshot = await self._snapshot(run)  # returns once the database answers again

    async def _snapshot(self, run: RunRow) -> StateSnapshot:
        return await self.graph.aget_state(thread_config(run["thread_id"]))

    async def _stream(self, run: RunRow, writer: EventWriter, *, after_outage: StateSnapshot | None) -> None:
        job = RunJob.model_validate(run["kwargs"])
        payload: Any = Command(**job.command) if job.command else job.input
        again = after_outage is not None or run["attempt"] > 1
        if again or payload is None or job.command:
            snapshot = after_outage if after_outage is not None else await self._snapshot(run)
            if again and got_somewhere(snapshot, run, job):
                payload = None  # continue from where this run got to; never re-send a consumed command
            if payload is None or run["attempt"] > 1 or job.command:
                await self._forget_cancelled_tasks(run["thread_id"], snapshot, forget_answer=payload is None)
        if saver := self._saver():
            saver.last_saved.track(str(run["thread_id"]))  # this run holds the thread
        newcomer = await self.first_bars.starting()
        try:
            async with batched_saves(
                self.graph.checkpointer, str(run["thread_id"]), durability=job.durability
            ):
                await self._stream_parts(run, job, payload, writer, newcomer)
        finally:
            newcomer.arrived()

    def _saver(self) -> ResilientPostgresSaver | None:
        saver = self.graph.checkpointer
        return saver if isinstance(saver, ResilientPostgresSaver) else None

    def _stop_tracking(self, run: RunRow) -> None:
        if saver := self._saver():
            saver.last_saved.untrack(str(run["thread_id"]))

    async def _stream_parts(
        self, run: RunRow, job: RunJob, payload: Any, writer: EventWriter, newcomer: Newcomer
    ) -> None:
        context = SessionContext(pool=self.pool, on_llm_call=metrics.llm_call, give_way=newcomer.give_way)
        async for part in self.graph.astream(
            payload,
            self.config_of(run, job),
            context=context,
            stream_mode=graph_modes([*job.stream_mode, "custom"]),  # custom always: metrics count its events
            interrupt_before=job.interrupt_before,
            interrupt_after=job.interrupt_after,
            durability=job.durability,
            version="v2",
        ):
            if part["type"] == "custom":
                metrics.observe_custom(part["data"])
                if part["data"].get("type") == "equity":
                    newcomer.arrived()
            for event, data in to_events(part, job.stream_mode):
                writer.emit(event, data)

    async def _forget_cancelled_tasks(
        self, thread_id: UUID, snapshot: StateSnapshot, *, forget_answer: bool
    ) -> None:
        """Let tasks that a cancellation stopped run again, from scratch; with `forget_answer`, drop
        the thread's last `Command(resume=...)` value so that a run without a command answers nothing.

        Cancelling a run mid-step can leave a `CancelledError` write for the interrupted task,
        sometimes beside part of its normal writes (its routing write missing); a resume would then
        stop without progress. Every node is safe to re-run (execute is idempotent per order), so
        the task's writes are dropped and it runs again.

        A resume value stays stored after the interrupt it answered; when that node paused again
        (several orders needing approval in one bar), running it again without a command would hand
        the old answer to the next order. The task keeps its own record of the answers it used.
        """
        cancelled = [t.id for t in snapshot.tasks if was_cancelled(t.error)]
        checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
        if not checkpoint_id or not (cancelled or forget_answer):
            return
        async with self.pool.connection() as conn:
            if cancelled:
                await conn.execute(DELETE_CANCELLED_WRITES, (str(thread_id), checkpoint_id, cancelled))
            if forget_answer:
                await conn.execute(DELETE_COMMAND_ANSWER, (str(thread_id), checkpoint_id))

    @staticmethod
    def config_of(run: RunRow, job: RunJob) -> RunnableConfig:
        """The LangGraph config: the thread, the run id (for re-entry), and the session's step budget."""
        return run_config(
            str(run["thread_id"]),
            bars_total=job.bars_total,
            run_id=run["run_id"],
            metadata={**run["metadata"], "run_id": str(run["run_id"]), "run_attempt": run["attempt"]},
            configurable=job.config.get("configurable", {}),
            checkpoint_id=job.checkpoint_id,
        )

    async def _cancelled(self, run: RunRow, writer: EventWriter) -> None:
        """Cancelled: by a client (keep checkpoints, or erase the run on rollback), or by shutdown."""
        async with self.pool.connection() as conn:
            current = await run_store.get_run(conn, run_id=run["run_id"])
        if current is not None and current["cancel_action"] is None:
            await writer.close()  # this worker is shutting down: the next worker resumes the run
            await self.lifecycle.hand_back(run)
            return
        if current is None or current["cancel_action"] == "rollback":
            await writer.close()
            await self.lifecycle.roll_back(run)
            return
        await self.lifecycle.settle_thread(run["thread_id"])
        writer.emit("end", None)
        await writer.close()


def got_somewhere(snapshot: StateSnapshot, run: RunRow, job: RunJob) -> bool:
    """Whether an earlier execution of this run made progress: it wrote the latest checkpoint, or
    the interrupt its resume answered is no longer pending (an answer consumed inside a node that
    paused again leaves no checkpoint of its own)."""
    if (snapshot.metadata or {}).get("run_id") == str(run["run_id"]):
        return True
    pending = {i.id for i in snapshot.interrupts}
    return bool(job.answers) and not pending & set(job.answers)


def was_cancelled(error: object) -> bool:
    """Whether a task's recorded error is a cancellation (stored as the exception or its repr)."""
    return isinstance(error, asyncio.CancelledError) or (
        isinstance(error, str) and error.startswith("CancelledError")
    )
