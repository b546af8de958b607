"""Retention: keep what users need, drop what they do not.

A finished session keeps its thread, its runs, its final checkpoint (Studio still opens it and
`get_state` still answers) and everything in the ledger (orders, fills, equity curve). What goes:

* per-step checkpoints, their writes and the blobs only they used, by the checkpointer's own
  `aprune(strategy="keep_latest")`, once a thread has been settled (idle or error) for
  `checkpoint_retention_days`;
* stored stream events of runs finished `events_retention_days` ago (a rejoin then ends at once);
* a thread whose `ttl` ran out (minutes since its last activity), by its strategy: `delete` (the
  thread, its runs and, by the checkpointer's `aprune(strategy="delete")`, every checkpoint row) or
  `keep_latest` (pruned as above, events dropped);
* finished queue jobs (procrastinate deletes successful ones at once; failed, cancelled and aborted
  ones go after the event retention).

`POST /threads/prune` does the same on demand. Busy threads are never touched: the sweep skips
them until they settle, and prune answers 409. The sweep runs every SWEEP_CRON as a procrastinate
periodic job, so exactly one worker runs each sweep however many processes there are.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from server.runs.queue import queue
from server.store import threads as thread_store
from server.store.threads import PruneStrategy
from tradegraph.database import Pool
from tradegraph.settings import get_settings

log = logging.getLogger(__name__)

SWEEP_BATCH = 200
"""Threads handled per statement batch; a sweep loops until nothing is due."""

DUE_BY_TTL = """
SELECT thread_id, ttl_strategy FROM threads
WHERE ttl_minutes IS NOT NULL AND status <> 'busy'
  AND updated_at + make_interval(secs => ttl_minutes * 60) <= now()
  AND (ttl_strategy = 'delete' OR pruned_at IS NULL OR pruned_at < updated_at)
ORDER BY updated_at LIMIT %s
"""
DUE_FOR_PRUNING = """
SELECT thread_id FROM threads
WHERE status IN ('idle', 'error') AND updated_at <= now() - %s
  AND (pruned_at IS NULL OR pruned_at < updated_at)
ORDER BY updated_at LIMIT %s
"""
MARK_PRUNED = "UPDATE threads SET pruned_at = now() WHERE thread_id = ANY(%s)"
DELETE_OLD_EVENTS = """
DELETE FROM run_events e USING runs r
WHERE e.run_id = r.run_id AND r.status NOT IN ('pending', 'running') AND r.updated_at <= now() - %s
"""
DELETE_THREAD_EVENTS = """
DELETE FROM run_events e USING runs r
WHERE e.run_id = r.run_id AND r.thread_id = ANY(%s) AND r.status NOT IN ('pending', 'running')
"""
OWNED_THREADS = "SELECT thread_id, status FROM threads WHERE user_id = %s AND thread_id = ANY(%s)"


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed."""

    threads_deleted: int = 0
    threads_pruned: int = 0
    events_deleted: int = 0


class ThreadsBusy(Exception):
    """Some threads have runs in flight; the message names them."""


class Retention:
    """Prunes and deletes threads through the checkpointer, and sweeps what is due."""

    def __init__(self, pool: Pool, checkpointer: AsyncPostgresSaver) -> None:
        self.pool, self.checkpointer = pool, checkpointer

    async def prune(self, user_id: int, thread_ids: Sequence[UUID], strategy: PruneStrategy) -> int:
        """Prune the user's threads among `thread_ids` (others' and unknown ids are not counted).

        Raises ThreadsBusy (and changes nothing) when any of them has a run in flight.
        """
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(OWNED_THREADS, (user_id, list(thread_ids)))).fetchall()
        busy = [str(r["thread_id"]) for r in rows if r["status"] == "busy"]
        if busy:
            raise ThreadsBusy(f"threads with runs in flight cannot be pruned: {', '.join(sorted(busy))}")
        owned = [r["thread_id"] for r in rows]
        if strategy == "delete":
            await self.delete(owned)
        else:
            await self.keep_latest(owned)
        return len(owned)

    async def delete(self, thread_ids: Sequence[UUID]) -> None:
        """Delete threads: their rows (runs and events by cascade), then every checkpoint row."""
        if not thread_ids:
            return
        async with self.pool.connection() as conn:
            await thread_store.delete_threads(conn, thread_ids=list(thread_ids))
        await self.checkpointer.aprune([str(t) for t in thread_ids], strategy="delete")

    async def keep_latest(self, thread_ids: Sequence[UUID]) -> None:
        """Keep each thread's latest checkpoint only, and drop its finished runs' stored events."""
        if not thread_ids:
            return
        await self.checkpointer.aprune([str(t) for t in thread_ids], strategy="keep_latest")
        async with self.pool.connection() as conn:
            await conn.execute(DELETE_THREAD_EVENTS, (list(thread_ids),))
            await conn.execute(MARK_PRUNED, (list(thread_ids),))

    async def sweep(self, *, events_after: timedelta, checkpoints_after: timedelta) -> SweepReport:
        """Apply expired TTLs, prune settled threads, drop old events and finished queue jobs."""
        deleted = pruned = 0
        while expired := await self._fetch(DUE_BY_TTL, (SWEEP_BATCH,)):
            doomed = [r["thread_id"] for r in expired if r["ttl_strategy"] == "delete"]
            kept = [r["thread_id"] for r in expired if r["ttl_strategy"] == "keep_latest"]
            await self.delete(doomed)
            await self.keep_latest(kept)
            deleted, pruned = deleted + len(doomed), pruned + len(kept)
        while settled := await self._fetch(DUE_FOR_PRUNING, (checkpoints_after, SWEEP_BATCH)):
            await self.keep_latest([r["thread_id"] for r in settled])
            pruned += len(settled)
        async with self.pool.connection() as conn:
            events = (await conn.execute(DELETE_OLD_EVENTS, (events_after,))).rowcount
        await queue.job_manager.delete_old_jobs(
            nb_hours=max(0, int(events_after.total_seconds() // 3600)),
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )
        report = SweepReport(threads_deleted=deleted, threads_pruned=pruned, events_deleted=events)
        log.info("retention sweep: %s", report)
        return report

    async def sweep_due(self) -> SweepReport:
        """One sweep with the configured retention (the periodic job)."""
        settings = get_settings()
        return await self.sweep(
            events_after=timedelta(days=settings.events_retention_days),
            checkpoints_after=timedelta(days=settings.checkpoint_retention_days),
        )

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        async with self.pool.connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()
