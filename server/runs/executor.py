"""Execute one run: stream the graph, store its events, record statuses, honour cancellation.

A run retried after its worker died is executed again with the same input and the same `run_id`
in the config metadata; LangGraph treats that as re-entry into the ongoing run and continues from
the run's last checkpoint, and `execute`'s idempotent client order ids keep fills exactly-once.
"""

import asyncio
import logging
from typing import Any
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Durability, StateSnapshot

from graph.builder import recursion_limit
from graph.context import SessionContext
from server.runs.events import EventWriter, next_seq
from server.runs.notifier import notify
from server.runs.queue import enqueue_run
from server.runs.translate import graph_modes, to_events
from server.serialization import to_jsonable
from server.store import runs as run_store
from server.store import threads as thread_store
from tradegraph.database import Pool

log = logging.getLogger(__name__)

DELETE_RUN_CHECKPOINTS = """
WITH doomed AS (
    DELETE FROM checkpoints WHERE thread_id = %s AND metadata->>'run_id' = %s RETURNING checkpoint_id
)
DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_id IN (SELECT checkpoint_id FROM doomed)
"""
DELETE_CANCELLED_WRITES = """
DELETE FROM checkpoint_writes
WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s AND task_id = ANY(%s)
"""
SAFE_ERRORS = (ValueError, TypeError, KeyError, PermissionError, LookupError, RuntimeError, TimeoutError)


def error_body(exc: BaseException) -> dict[str, str]:
    """The protocol's error event: type and message (internal details only for expected errors)."""
    message = str(exc) if isinstance(exc, SAFE_ERRORS) else f"{type(exc).__name__}: {exc}"
    return {"error": type(exc).__name__, "message": message}


class RunExecutor:
    """Runs graphs for queued runs in this process."""

    def __init__(self, pool: Pool, graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
        self.pool, self.graph = pool, graph

    async def execute(self, run_id: UUID) -> None:
        """Execute (or continue) one run to its end, cancellation or failure."""
        async with self.pool.connection() as conn:
            run = await run_store.start_run(conn, run_id=run_id)
        if run is None:
            return  # cancelled before it started, or already finished
        first_seq = 1 if run["attempt"] == 1 else await next_seq(self.pool, str(run_id))
        writer = EventWriter(self.pool, str(run_id), first_seq)
        writer.emit("metadata", {"run_id": str(run_id), "attempt": run["attempt"]})
        status, error = "success", None
        try:
            await self._stream(run, writer)
        except asyncio.CancelledError:
            await asyncio.shield(self._cancelled(run, writer))
            raise
        except Exception as exc:
            log.warning("run %s failed: %s", run_id, exc, exc_info=not isinstance(exc, SAFE_ERRORS))
            status, error = "error", error_body(exc)
        await self._finish(run, status, error)  # the status is final before the last event is seen
        if error:
            writer.emit("error", error)
        else:
            writer.emit("end", None)
        await writer.close()

    async def _stream(self, run: dict[str, Any], writer: EventWriter) -> None:
        kwargs = run["kwargs"]
        requested = kwargs.get("stream_mode") or ["values"]
        payload: Any = kwargs.get("input")
        if kwargs.get("command"):
            payload = Command(**kwargs["command"])
        config = self.config_of(run)
        if payload is None or run["attempt"] > 1 or kwargs.get("command"):
            await self._forget_cancelled_tasks(run["thread_id"])
        durability: Durability = kwargs.get("durability") or "async"
        async for part in self.graph.astream(
            payload,
            config,
            context=SessionContext(pool=self.pool),
            stream_mode=graph_modes(requested),
            interrupt_before=kwargs.get("interrupt_before"),
            interrupt_after=kwargs.get("interrupt_after"),
            durability=durability,
            version="v2",
        ):
            for event, data in to_events(part, requested):
                writer.emit(event, data)

    async def _forget_cancelled_tasks(self, thread_id: UUID) -> None:
        """Let tasks that a cancellation stopped run again, from scratch.

        Cancelling a run mid-step can leave a `CancelledError` write for the interrupted task,
        sometimes beside part of its normal writes (its routing write missing); a resume would then
        stop without progress. Every node is safe to re-run (execute is idempotent per order), so
        the task's writes are dropped and it runs again.
        """
        snapshot = await self.graph.aget_state({"configurable": {"thread_id": str(thread_id)}})
        cancelled = [t.id for t in snapshot.tasks if was_cancelled(t.error)]
        checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
        if cancelled and checkpoint_id:
            async with self.pool.connection() as conn:
                await conn.execute(DELETE_CANCELLED_WRITES, (str(thread_id), checkpoint_id, cancelled))

    @staticmethod
    def config_of(run: dict[str, Any]) -> RunnableConfig:
        """The LangGraph config: the thread, the run id (for re-entry), and the session's step budget."""
        kwargs = run["kwargs"]
        configurable = {
            **(kwargs.get("config") or {}).get("configurable", {}),
            "thread_id": str(run["thread_id"]),
        }
        if kwargs.get("checkpoint_id"):
            configurable["checkpoint_id"] = kwargs["checkpoint_id"]
        return {
            "configurable": configurable,
            "metadata": {**run["metadata"], "run_id": str(run["run_id"]), "run_attempt": run["attempt"]},
            "recursion_limit": recursion_limit(int(kwargs.get("bars_total") or 1)),
            "run_id": run["run_id"],
        }

    async def _finish(self, run: dict[str, Any], status: str, error: dict[str, Any] | None) -> None:
        snapshot = await self.graph.aget_state({"configurable": {"thread_id": str(run["thread_id"])}})
        result = None if error else final_values(snapshot)
        thread_status = "error" if error else paused_or_idle(snapshot)
        async with self.pool.connection() as conn:
            await run_store.finish_run(
                conn,
                run_id=run["run_id"],
                thread_id=run["thread_id"],
                status=status,
                thread_status=thread_status,
                error=error,
                result=result,
            )

    async def _cancelled(self, run: dict[str, Any], writer: EventWriter) -> None:
        """Cancelled: by a client (keep checkpoints, or erase the run on rollback), or by shutdown."""
        async with self.pool.connection() as conn:
            current = await run_store.get_run(conn, run_id=run["run_id"])
            if current is not None and current["cancel_action"] is None:
                # This worker is shutting down: hand the run to the next worker, which resumes it.
                await writer.close()
                job_id = await enqueue_run(run_id=run["run_id"], thread_id=run["thread_id"])
                log.info("run %s handed back to the queue as job %s", run["run_id"], job_id)
                return
            rolled_back = current is None or current["cancel_action"] == "rollback"
            if rolled_back:
                await writer.close()
                tid = str(run["thread_id"])
                await conn.execute(DELETE_RUN_CHECKPOINTS, (tid, str(run["run_id"]), tid))
                await run_store.delete_run(conn, run_id=run["run_id"])  # its events go with it
            await self.settle_thread(conn, run["thread_id"])
            if rolled_back:
                await notify(conn, str(run["run_id"]))
                return
        writer.emit("end", None)
        await writer.close()

    async def settle_thread(self, conn: Any, thread_id: UUID) -> None:
        """Thread status outside a finishing run: busy if runs are queued, else interrupted / idle."""
        if await run_store.active_runs(conn, thread_id=thread_id):
            status = "busy"
        else:
            snapshot = await self.graph.aget_state({"configurable": {"thread_id": str(thread_id)}})
            status = paused_or_idle(snapshot)
        await thread_store.set_status(conn, thread_id=thread_id, status=status)


def was_cancelled(error: object) -> bool:
    """Whether a task's recorded error is a cancellation (stored as the exception or its repr)."""
    return isinstance(error, asyncio.CancelledError) or (
        isinstance(error, str) and error.startswith("CancelledError")
    )


def paused_or_idle(snapshot: StateSnapshot) -> str:
    """`interrupted` while the graph has work left (a pause, or a run cancelled mid-step), else `idle`.

    `snapshot.next` alone misses a run cancelled after a step's writes were saved but before its
    checkpoint: its tasks are listed but not in `next`, and a resume with no input continues it.
    """
    return "interrupted" if snapshot.tasks else "idle"


def final_values(snapshot: StateSnapshot) -> dict[str, Any]:
    """What /wait answers: the values, with `__interrupt__` when the session is paused."""
    values = to_jsonable(snapshot.values or {})
    if snapshot.interrupts:
        values["__interrupt__"] = [{"id": i.id, "value": to_jsonable(i.value)} for i in snapshot.interrupts]
    return values
