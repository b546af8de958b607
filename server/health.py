"""Readiness: can this process serve runs right now? Each check answers `ok` or the reason it is not."""

import asyncio

from server.runs.queue import queue_stats
from server.services import RunServices

DATABASE_TIMEOUT_S = 2.0


async def readiness(services: RunServices) -> dict[str, str]:
    """`database`, `worker` (this process's, when it runs one) and `queue` (someone takes queued runs)."""
    checks = {"database": "ok", "queue": "ok"}
    if services.worker is not None:
        health = services.worker.health
        checks["worker"] = "ok" if health.running else f"run worker is not running: {health.last_error}"
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S):
            stats = await queue_stats(services.pool)
    except Exception as exc:  # any failure here means the database cannot be used
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}".strip()
        checks.pop("queue")
        return checks
    if stats.queued and not stats.live_workers:
        checks["queue"] = (
            f"{stats.queued} run(s) queued and no live worker (none has sent a heartbeat recently)"
        )
    return checks
