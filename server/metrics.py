"""Prometheus metrics: what the runs of this process did, and the queue as the database sees it.

Counters and histograms are per process (runs this process executed); gauges read from the
database (`tradegraph_runs`, `tradegraph_queue_*`, `tradegraph_workers_*`) are the same in every
process, so aggregate those with `max`, not `sum`.
"""

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from server.runs.queue import queue_stats
from server.store.runs import RunStatus
from tradegraph.database import Pool

REGISTRY = CollectorRegistry()
RUN_STATUSES: tuple[RunStatus, ...] = ("pending", "running", "success", "error", "timeout", "interrupted")
COUNT_RUNS = "SELECT status, count(*) AS n FROM runs GROUP BY status"

RUNS = Gauge("tradegraph_runs", "Runs by status (all processes).", ["status"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("tradegraph_queue_depth", "Run jobs waiting for a worker.", registry=REGISTRY)
QUEUE_OLDEST = Gauge(
    "tradegraph_queue_oldest_age_seconds", "Age of the oldest run not started yet.", registry=REGISTRY
)
WORKERS_LIVE = Gauge("tradegraph_workers_live", "Workers that sent a heartbeat recently.", registry=REGISTRY)
HEARTBEAT_AGE = Gauge(
    "tradegraph_worker_last_heartbeat_age_seconds",
    "Seconds since any worker's last heartbeat.",
    registry=REGISTRY,
)
WORKER_RUNNING = Gauge(
    "tradegraph_worker_running", "1 while this process's run worker is running.", registry=REGISTRY
)
RUN_SECONDS = Histogram(
    "tradegraph_run_duration_seconds",
    "Wall time of runs executed here, by outcome.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
    registry=REGISTRY,
)
BARS = Counter("tradegraph_bars", "Bars executed (equity marks) by runs here.", registry=REGISTRY)
FILLS = Counter("tradegraph_fills", "Orders filled by the ledger in runs here.", registry=REGISTRY)
DENIALS = Counter(
    "tradegraph_risk_denials",
    "Proposals rejected, by the rule that rejected them.",
    ["rule"],
    registry=REGISTRY,
)
LLM_SECONDS = Histogram("tradegraph_llm_call_seconds", "Latency of chat model calls.", registry=REGISTRY)
LLM_ERRORS = Counter("tradegraph_llm_errors", "Chat model calls that failed.", registry=REGISTRY)
DB_ERRORS = Counter(
    "tradegraph_database_errors",
    "Database calls that lost their connection and were retried.",
    registry=REGISTRY,
)


def observe_custom(data: Any) -> None:
    """Count what a run's custom stream events (graph/events.py) say: bars, fills and risk denials."""
    if not isinstance(data, dict):
        return
    kind = data.get("type")
    if kind == "equity":
        BARS.inc()
    elif kind == "fill" and data.get("status") == "filled" and not data.get("replayed"):
        FILLS.inc()
    elif kind == "verdict" and data.get("status") == "rejected":
        DENIALS.labels(rule=str(data.get("rule"))).inc()


def database_error(what: str) -> None:
    """Count a lost database connection (registered as the domain's disconnect listener)."""
    DB_ERRORS.inc()


def llm_call(seconds: float, failed: bool) -> None:
    """Time a chat model call of the `llm` decider, and count it if it failed (after the client's retries)."""
    LLM_SECONDS.observe(seconds)
    if failed:
        LLM_ERRORS.inc()


async def _read_database_gauges(pool: Pool) -> None:
    async with pool.connection() as conn:
        counts = {r["status"]: r["n"] for r in await (await conn.execute(COUNT_RUNS)).fetchall()}
    for status in RUN_STATUSES:
        RUNS.labels(status=status).set(counts.get(status, 0))
    stats = await queue_stats(pool)
    QUEUE_DEPTH.set(stats.queued)
    QUEUE_OLDEST.set(stats.oldest_pending_s or 0)
    WORKERS_LIVE.set(stats.live_workers)
    HEARTBEAT_AGE.set(stats.last_heartbeat_s if stats.last_heartbeat_s is not None else float("nan"))


async def exposition(pool: Pool, *, worker_running: bool) -> bytes:
    """The text exposition format, with the database gauges read now."""
    await _read_database_gauges(pool)
    WORKER_RUNNING.set(1 if worker_running else 0)
    return generate_latest(REGISTRY)
