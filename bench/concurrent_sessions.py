"""Many bots at once: N clients each stream their own daily session from one `tradegraph serve`.

What it measures
    `--users` x `--models` bots (default 10 x 10 = 100), each on its own thread, start a 62-bar
    daily session (AAPL/MSFT/IBM, 2012-01-03..2012-03-30, `rule` decider) at the same moment with
    the official `langgraph_sdk` client (`runs.stream`, `stream_mode=["custom"]`). It prints:

    * aggregate bars/s: all bars of all sessions over the wall time from the first request to the
      last session's end;
    * first-bar latency p50/p99: from a client's request to its first `equity` event (the first
      bar done), i.e. how long a client watches a silent stream;
    * peak RSS of every server and worker process (VmHWM);
    * the CPU time the hypervisor stole from the machine meanwhile (bench/machine.py);
    * that every run succeeded and every ledger reconciles with its fills;
    * transactions per bar in the server's database during the run (API, queue and sessions: every
      autocommit statement is one; pg_stat_database);
    * statements per bar by kind, counted in-process for one 62-bar session over the same database,
      its checkpoints saved in batches as the executor saves them (a lower bound: in-process the
      session takes less than the 1 s after which a batch is saved);
    * bytes per bar stored, and kept: table sizes before and after `tradegraph retention --now`
      (per-step checkpoints, stream events and queue jobs gone; final checkpoints, ledger and
      equity curves kept), over the empty database's, after VACUUM FULL.

    `--extra-workers K` adds K `tradegraph worker` processes beside the server (scale-out).

    .venv/bin/python bench/concurrent_sessions.py                       # 100 sessions, one serve
    .venv/bin/python bench/concurrent_sessions.py --extra-workers 2
    git worktree add /tmp/anchor <commit>                               # side by side with an anchor:
    .venv/bin/python bench/concurrent_sessions.py --server-root /tmp/anchor --slots 2
"""

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests/, bench/

import psycopg  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402
from psycopg_pool import AsyncConnectionPool  # noqa: E402

from bench.machine import cpu_seconds, postgres_cpu_seconds, steal_line, steal_seconds  # noqa: E402
from tests.support.databases import fresh_database  # noqa: E402
from tests.support.ledger_checks import assert_reconciles  # noqa: E402
from tests.support.server import ServerProcess, clean_env  # noqa: E402
from tests.support.sessions import input_for, run_session  # noqa: E402
from tradegraph.accounts import create_model, create_user  # noqa: E402
from tradegraph.database import CONNECTION_KWARGS  # noqa: E402
from tradegraph.limits import RiskLimits  # noqa: E402
from tradegraph.settings import PROJECT_ROOT  # noqa: E402

LOG_DIR = PROJECT_ROOT / ".tradegraph" / "bench-logs"
SESSION = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-03-30",
    "symbols": ["AAPL", "MSFT", "IBM"],
    "decider": "rule",
}
KEPT_TABLES = (
    "checkpoints",
    "checkpoint_writes",
    "checkpoint_blobs",
    "run_events",
    "runs",
    "threads",
    "procrastinate_jobs",
    "procrastinate_events",
    "orders",
    "fills",
    "equity_points",
    "sessions",
)


RUNS_INSERTED = "SELECT extract(epoch FROM created_at) - %s FROM runs"
TRANSACTIONS = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
STATS_PUBLISHED_S = 1.2
"""How long PostgreSQL may take to publish a backend's transaction counts (at most once a second)."""


@dataclass
class Bot:
    key: str
    model: dict[str, Any]


@dataclass
class Session:
    bot: Bot
    thread_id: str = ""
    client: Any = None
    """The bot's `langgraph_sdk` client, made before the clock starts (making one costs ~20 ms of the
    benchmark's CPU: made at the start of each stream, 100 of them delayed the last request by 2 s)."""
    started_s: float | None = None
    first_bar_s: float | None = None
    ended_s: float | None = None
    bars: int = 0
    bar_times_s: list[float] = field(default_factory=list)
    error: str | None = None


async def create_bots(url: str, users: int, models: int) -> list[Bot]:
    """`users` users with `models` bots each, 100,000 cash and default limits."""
    bots: list[Bot] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for u in range(users):
            user, key = await create_user(conn, name=f"bench-{u}-{uuid.uuid4().hex[:4]}")
            for m in range(models):
                model = await create_model(
                    conn,
                    user_id=user.id,
                    name=f"bot-{m}",
                    signature=f"bench-{u}-{m}-{uuid.uuid4().hex[:6]}",
                    initial_cash=Decimal(100000),
                    limits=RiskLimits(),
                )
                bots.append(Bot(key, model))
    return bots


async def create_thread(base_url: str, session: Session) -> None:
    session.client = get_client(url=base_url, api_key=session.bot.key, timeout=600)
    thread = await session.client.threads.create(metadata={"model_id": session.bot.model["id"]})
    session.thread_id = thread["thread_id"]


@dataclass
class FirstBarsSeen:
    """Counts sessions that showed their first bar; when the last one does, reads the server's CPU."""

    waiting: int
    read_cpu: Callable[[], float]
    cpu_s: float | None = None

    def seen(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.cpu_s = self.read_cpu()


async def stream_one(base_url: str, session: Session, t0: float, first_bars: FirstBarsSeen) -> None:
    try:
        async for part in session.client.runs.stream(
            session.thread_id, "trading_session", input=SESSION, stream_mode=["custom"]
        ):
            if part.event == "metadata" and session.started_s is None:
                session.started_s = time.perf_counter() - t0  # a worker took the run: its first event
            if part.event == "error":
                session.error = str(part.data)
            if part.event == "custom" and part.data.get("type") == "equity":
                session.bars += 1
                session.bar_times_s.append(time.perf_counter() - t0)
                if session.first_bar_s is None:
                    session.first_bar_s = session.bar_times_s[-1]
                    first_bars.seen()
    except Exception as exc:  # recorded and reported: the benchmark fails loudly at the end
        session.error = f"{type(exc).__name__}: {exc}"
    session.ended_s = time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def count_statements(url: str, bot: Bot) -> tuple[float, Counter[str]]:
    """Statements per bar of one 62-bar session run in-process (every execute and executemany row)."""
    counts: Counter[str] = Counter()

    class CountingCursor(psycopg.AsyncCursor[Any]):
        async def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            counts[" ".join(str(query).split())[:70]] += 1
            return await super().execute(query, params, **kw)

        async def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
            rows = list(params_seq)
            counts[" ".join(str(query).split())[:70]] += len(rows)
            return await super().executemany(query, rows, **kw)

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        conn.cursor_factory = CountingCursor

    pool = AsyncConnectionPool(url, open=False, kwargs=CONNECTION_KWARGS, configure=configure)
    await pool.open()
    try:
        await run_session(pool, input_for(bot.model, end="2012-01-04"))  # warm the price cache
        counts.clear()
        _, parts = await run_session(pool, input_for(bot.model), batched=True)  # as the executor saves
    finally:
        await pool.close()
    bars = sum(1 for p in parts if p["type"] == "custom" and p["data"].get("type") == "equity")
    return sum(counts.values()) / bars, counts


def start_workers(
    url: str, count: int, slots: int, env: dict[str, str], root: Path
) -> list[subprocess.Popen[bytes]]:
    """`count` `tradegraph worker` processes of the checkout `root`, logging under LOG_DIR."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--concurrency", str(slots)],
            cwd=root,
            env=clean_env({"DATABASE_URL": url, "TRADEGRAPH_ENV": "test", "PYTHONPATH": str(root), **env}),
            stdout=(LOG_DIR / f"concurrent-worker-{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]


def runs_inserted(url: str, since: float) -> list[float]:
    """Seconds from the first request until each run's row was inserted (the database's clock)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [float(row[0]) for row in conn.execute(RUNS_INSERTED, (since,)).fetchall()]


def run_retention_now(url: str) -> subprocess.CompletedProcess[str]:
    """`tradegraph retention --now`: prune every settled thread, drop every finished run's events."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "retention", "--now"],
        cwd=PROJECT_ROOT,
        env=clean_env({"DATABASE_URL": url, "TRADEGRAPH_ENV": "test"}),
        capture_output=True,
        text=True,
        check=False,
    )


def transactions(url: str) -> int:
    """Transactions committed or rolled back in the database so far: every autocommit statement is
    one (PostgreSQL publishes a backend's counts within a second, and when it exits)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(TRANSACTIONS).fetchone()
        return int(row[0]) if row else 0


def table_bytes(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL")
        total = 0
        for table in KEPT_TABLES:
            row = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
            total += int(row[0]) if row else 0
        return total


async def measure(args: argparse.Namespace, url: str) -> int:
    """Run the sessions against a fresh database at `url` and print the figures."""
    empty_bytes = table_bytes(url)
    bots = await create_bots(url, args.users, args.models)
    env = {"TRADEGRAPH_RATE_LIMIT": "none", **dict(kv.split("=", 1) for kv in args.env)}
    server = ServerProcess(
        url,
        LOG_DIR / "concurrent-serve.log",
        workers=args.slots if args.serve_slots is None else args.serve_slots,
        extra_env=env,
        root=args.server_root,
    )
    server.wait_ready()
    workers = start_workers(url, args.extra_workers, args.slots, env, args.server_root)
    try:
        await asyncio.sleep(2.0 if workers else 0.0)  # workers register with the queue
        sessions = [Session(bot) for bot in bots]
        await asyncio.gather(*(create_thread(server.url, s) for s in sessions))
        pids = [server.process.pid, *(w.pid for w in workers)]
        await asyncio.sleep(STATS_PUBLISHED_S)
        transactions_before = transactions(url)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        clients_before, postgres_before = time.process_time(), postgres_cpu_seconds()
        steal_before = steal_seconds()
        first_bars = FirstBarsSeen(len(sessions), lambda: sum(cpu_seconds(pid) for pid in pids))
        started, started_at = time.perf_counter(), time.time()
        await asyncio.gather(*(stream_one(server.url, s, started, first_bars) for s in sessions))
        wall = time.perf_counter() - started
        server_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        clients_cpu = time.process_time() - clients_before
        postgres_cpu = postgres_cpu_seconds() - postgres_before
        stolen = steal_seconds() - steal_before
        inserted = runs_inserted(url, started_at)
        rss = {"serve": peak_rss_mib(server.process.pid)}
        rss.update({f"worker {i + 1}": peak_rss_mib(w.pid) for i, w in enumerate(workers)})
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
        server.stop()
    await asyncio.sleep(STATS_PUBLISHED_S)
    server_transactions = transactions(url) - transactions_before
    failed = [s for s in sessions if s.error or s.bars != 62]
    pool = AsyncConnectionPool(url, open=False, kwargs=CONNECTION_KWARGS)
    await pool.open()
    try:
        for bot in bots:
            await assert_reconciles(pool, bot.model["id"])
    finally:
        await pool.close()
    per_bar, counts = await count_statements(url, bots[0])
    bars = sum(s.bars for s in sessions) + 2 + 62  # the warm-up and counted sessions' bars
    stored = table_bytes(url) - empty_bytes
    retention = run_retention_now(url)
    kept = table_bytes(url) - empty_bytes if retention.returncode == 0 else None

    first = [s.first_bar_s for s in sessions if s.first_bar_s is not None]
    started = [s.started_s for s in sessions if s.started_s is not None]
    total_bars = sum(s.bars for s in sessions)
    print(f"sessions: {len(sessions)} ({args.users} users x {args.models} bots), 62 bars each")
    print(f"server: 1 serve + {args.extra_workers} workers, {args.slots} run slots per process, env {env}")
    print(f"server code: {args.server_root}")
    print(f"aggregate: {total_bars} bars in {wall:.1f} s = {total_bars / wall:.0f} bars/s")
    per_bar_ms = server_cpu * 1000 / total_bars
    print(f"server CPU (all its processes): {server_cpu:.1f} s, {per_bar_ms:.2f} ms per bar")
    clients = f"the {len(sessions)} clients {clients_cpu:.1f} s"
    print(f"other CPU meanwhile: PostgreSQL {postgres_cpu:.1f} s, {clients}")
    print(steal_line(stolen, wall))
    if first:
        print(
            f"first bar: p50 {statistics.median(first):.2f} s, p99 {percentile(first, 0.99):.2f} s, "
            f"max {max(first):.2f} s"
        )
    if first_bars.cpu_s is not None:
        last = max(first)
        later = sum(1 for s in sessions for t in s.bar_times_s[1:] if t <= last)
        startup_ms = (first_bars.cpu_s - cpu_before) * 1000 / len(sessions)
        print(
            f"until the last first bar: server CPU {startup_ms:.1f} ms per session, "
            f"{later} later bars shown meanwhile"
        )
    if started:
        p50, p99 = statistics.median(started), percentile(started, 0.99)
        print(f"run started (metadata event): p50 {p50:.2f} s, p99 {p99:.2f} s")
    p50, p99 = statistics.median(inserted), percentile(inserted, 0.99)
    print(f"run inserted (by the API): p50 {p50:.2f} s, p99 {p99:.2f} s")
    ends = [s.ended_s for s in sessions if s.ended_s is not None]
    print(f"session end: first {min(ends):.1f} s, last {max(ends):.1f} s")
    print("peak RSS: " + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in rss.items()))
    print(f"runs failed: {len(failed)}; ledgers reconciled: {len(bots)}")
    print(
        f"server transactions per bar (API, queue and sessions; pg_stat_database): "
        f"{server_transactions / total_bars:.2f}"
    )
    print(f"statements per bar (in-process, one session, saved as the executor saves): {per_bar:.2f}")
    for query, n in counts.most_common(8):
        print(f"    {n / 62:5.2f}  {query}")
    print(f"bytes stored per bar before retention: {stored / bars:.0f} ({stored // 1024} KiB)")
    if kept is None:
        print(f"bytes kept per bar: retention failed: {retention.stderr.strip()[-400:]}")
    else:
        print(
            f"bytes kept per bar after retention: {kept / bars:.0f} ({kept / 1024:.0f} KiB for {bars} bars)"
        )
    for s in failed[:5]:
        print(f"  failed: model {s.bot.model['id']}: bars {s.bars}, {s.error}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--models", type=int, default=10, help="bots per user")
    parser.add_argument("--extra-workers", type=int, default=0, help="`tradegraph worker` processes to add")
    parser.add_argument("--slots", type=int, default=100, help="run slots per process (TRADEGRAPH_WORKERS)")
    parser.add_argument(
        "--serve-slots", type=int, default=None, help="run slots of `serve` (default --slots; 0: API only)"
    )
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server and workers")
    parser.add_argument(
        "--server-root",
        type=Path,
        default=PROJECT_ROOT,
        help="checkout whose code the server and workers run (e.g. a worktree of the anchor commit)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TRADEGRAPH_ENV", "test")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers (finally) when killed
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with fresh_database("tradegraph_bench") as url:
        code = asyncio.run(measure(args, url))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
