"""Latency of `runs.wait` for a one-bar trading session: `tradegraph serve` vs `langgraph dev`.

What it measures
    The wall-clock time of `client.runs.wait(thread_id, "trading_session", input=...)` with the
    official `langgraph_sdk` client, for a one-bar daily session (AAPL, 2012-01-03, `rule` decider),
    on a thread created just before (not timed). Each server gets 3 untimed warm-up runs, then N
    timed runs (`--iterations`, default 50), each on a new thread: median, p99, min and max in
    milliseconds, the CPU time of each server's process per timed run (its thread's creation
    included: a server busy with one run at a time is CPU-bound on a slow machine, so this is the
    steadier figure for comparing versions), the ratio of the medians, and the CPU time the
    hypervisor stole from the machine while each server was timed (bench/machine.py).

The two servers, side by side in one run against one database
    * tradegraph: `python -m cli serve`; threads carry `metadata.model_id` and the server injects
      `model_id` and `signature` into the input.
    * langgraph dev: the same graph through this repo's `langgraph.json`, run by
      `langgraph-cli[inmem]` from `.tradegraph/bench-venv` (bench/langgraph_dev.py); the input
      carries the identity itself because that server injects none.

The database, the server processes and the accounts come from the test support (tests/support):
a fresh database on `DATABASE_URL`'s server or the embedded PostgreSQL, dropped at the end.

    make bench                                         # or: .venv/bin/python bench/runs_wait.py
    .venv/bin/python bench/runs_wait.py --iterations 20 --skip-langgraph-dev
    git worktree add /tmp/anchor <commit>              # side by side with an older commit:
    .venv/bin/python bench/runs_wait.py --anchor /tmp/anchor --skip-langgraph-dev
"""

import argparse
import asyncio
import math
import os
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests/, bench/

from langgraph_sdk import get_client  # noqa: E402

from bench import langgraph_dev  # noqa: E402
from bench.machine import cpu_seconds, steal_line, steal_seconds  # noqa: E402
from tests.support.accounts import owner_and_model  # noqa: E402
from tests.support.databases import fresh_database  # noqa: E402
from tests.support.server import HttpProcess, ServerProcess  # noqa: E402
from tradegraph.settings import PROJECT_ROOT  # noqa: E402

GRAPH_ID = "trading_session"
ONE_BAR = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-01-03",
    "symbols": ["AAPL"],
    "decider": "rule",
}
WARMUP_RUNS = 3
RUN_TIMEOUT_S = 60.0
LOG_DIR = langgraph_dev.DATA_DIR / "bench-logs"
QUIET_ENV = {"LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}


@dataclass
class Result:
    """The timings of one server, or why it could not be measured."""

    server: str
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None
    steal: str = ""
    """The CPU steal while its runs were timed (bench/machine.py)."""
    cpu_s: float = 0.0
    """CPU time of the server's process over its timed runs (thread creations included)."""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples_ms)

    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def cpu_ms_per_run(self) -> float:
        return self.cpu_s * 1000 / len(self.samples_ms)

    def p99(self) -> float:
        """Nearest-rank percentile (with 50 samples, p99 is the maximum)."""
        ordered = sorted(self.samples_ms)
        return ordered[max(1, math.ceil(0.99 * len(ordered))) - 1]


async def one_run(client: Any, run_input: dict[str, Any], metadata: dict[str, Any]) -> float:
    """Create a thread (untimed), then time runs.wait of one bar on it; milliseconds."""
    thread = await client.threads.create(metadata=metadata)
    started = time.perf_counter()
    state = await asyncio.wait_for(
        client.runs.wait(thread["thread_id"], GRAPH_ID, input=run_input), RUN_TIMEOUT_S
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    if not isinstance(state, dict) or state.get("done") is not True or state.get("bars_total") != 1:
        raise RuntimeError(f"the run did not finish its one bar: {state!r:.300}")
    return elapsed_ms


@dataclass
class Target:
    """One server under measurement, with the key, input and thread metadata its runs need."""

    result: Result
    server: HttpProcess
    api_key: str | None
    run_input: dict[str, Any]
    metadata: dict[str, Any]


async def time_alternately(targets: list[Target], n: int) -> None:
    """WARMUP_RUNS untimed runs, then `n` timed ones, on each target in turn (run 1 on every server,
    then run 2, ...), so that the machine's drift during the benchmark weighs on all of them alike."""
    clients = [get_client(url=t.server.url, api_key=t.api_key) for t in targets]
    try:
        for i in range(WARMUP_RUNS + n):
            for target, client in zip(targets, clients, strict=True):
                if target.result.error is not None:
                    continue
                cpu_before = cpu_seconds(target.server.process.pid)
                try:
                    elapsed = await one_run(client, target.run_input, target.metadata)
                except Exception as exc:  # reported with the server's log
                    target.result.error = f"{type(exc).__name__}: {exc}"
                    print(
                        f"{target.result.server} FAILED: {target.result.error}\n"
                        f"{target.server.log()[-8000:]}",
                        file=sys.stderr,
                    )
                    continue
                if i >= WARMUP_RUNS:
                    target.result.samples_ms.append(elapsed)
                    target.result.cpu_s += cpu_seconds(target.server.process.pid) - cpu_before
    finally:
        for client in clients:
            await client.aclose()


def measure(targets: list[Target], n: int) -> list[Result]:
    """Wait for the servers, time their runs alternately, always stop them."""
    try:
        for target in targets:
            target.server.wait_ready(120)
        stolen, started = steal_seconds(), time.perf_counter()
        asyncio.run(time_alternately(targets, n))
        for target in targets:
            target.result.steal = steal_line(steal_seconds() - stolen, time.perf_counter() - started)
    except Exception as exc:  # a server that never came up: reported with its log
        for target in targets:
            if not target.result.samples_ms:
                target.result.error = target.result.error or f"{type(exc).__name__}: {exc}"
        print(f"FAILED: {exc}\n" + "\n".join(t.server.log()[-4000:] for t in targets), file=sys.stderr)
    finally:
        for target in targets:
            target.server.stop()
    return [t.result for t in targets]


def tradegraph_target(url: str, *, name: str = "tradegraph", root: Path = PROJECT_ROOT) -> Target:
    """`tradegraph serve` of the checkout `root` (this one, or an anchor commit's worktree)."""
    key, model = asyncio.run(owner_and_model(url))
    server = ServerProcess(url, LOG_DIR / f"{name}.log", extra_env=QUIET_ENV, root=root)
    return Target(Result(name), server, key, ONE_BAR, {"model_id": model["id"]})


def bench_langgraph_dev(url: str, n: int) -> tuple[Result, str]:
    venv = langgraph_dev.ensure_venv(LOG_DIR)
    _, model = asyncio.run(owner_and_model(url))
    run_input = {**ONE_BAR, "model_id": model["id"], "signature": model["signature"]}
    server = langgraph_dev.start(url, venv, LOG_DIR / "langgraph-dev.log", QUIET_ENV)
    [result] = measure([Target(Result("langgraph dev"), server, None, run_input, {})], n)
    return result, langgraph_dev.installed_version(venv, "langgraph-api")


def table(results: list[Result], n: int, versions: dict[str, str]) -> str:
    """The result table, with the ratio of the medians when both servers were measured."""
    lines = [
        f"runs.wait, one-bar daily session (graph {GRAPH_ID!r}), {n} timed runs after {WARMUP_RUNS} warm-up",
        f"machine: nproc={os.cpu_count()}, Python {platform.python_version()}, {platform.platform()}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        f"{'server':<15} {'n':>4} {'median ms':>10} {'p99 ms':>10} {'min ms':>10} {'max ms':>10}"
        f" {'CPU ms/run':>11}",
    ]
    for r in results:
        if r.ok:
            figures = (r.median(), r.p99(), min(r.samples_ms), max(r.samples_ms))
            lines.append(
                f"{r.server:<15} {len(r.samples_ms):>4}"
                + "".join(f" {v:>10.1f}" for v in figures)
                + f" {r.cpu_ms_per_run():>11.1f}"
            )
        else:
            lines.append(f"{r.server:<15} FAILED: {(r.error or 'no samples').splitlines()[0][:80]}")
    for steal in dict.fromkeys(r.steal for r in results if r.steal):  # servers timed together share one
        lines.append(f"{', '.join(r.server for r in results if r.steal == steal)}: {steal}")
    ok = {r.server: r for r in results if r.ok}
    if {"tradegraph", "langgraph dev"} <= set(ok):
        ratio = ok["langgraph dev"].median() / ok["tradegraph"].median()
        lines.append(f"\nratio langgraph-dev median / tradegraph median: {ratio:.2f}x")
    if {"tradegraph", "anchor"} <= set(ok):
        ratio = ok["anchor"].median() / ok["tradegraph"].median()
        lines.append(f"ratio anchor median / tradegraph median: {ratio:.2f}x")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=50, help="timed runs per server (default 50)")
    parser.add_argument("--skip-langgraph-dev", action="store_true", help="measure tradegraph only")
    parser.add_argument(
        "--anchor",
        type=Path,
        help="also measure the server of this checkout (a worktree of an older commit), alternating runs",
    )
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    versions = {"langgraph-sdk (client)": version("langgraph-sdk"), "langgraph": version("langgraph")}
    with fresh_database("tradegraph_bench") as url, ExitStack() as anchor_db:
        targets = [tradegraph_target(url)]
        if args.anchor is not None:  # a database of its own: the two servers' workers share no queue
            anchor_url = anchor_db.enter_context(fresh_database("tradegraph_bench"))
            targets.append(tradegraph_target(anchor_url, name="anchor", root=args.anchor.resolve()))
        results = measure(targets, args.iterations)
        if not args.skip_langgraph_dev:
            result, versions["langgraph-api (dev)"] = bench_langgraph_dev(url, args.iterations)
            results.append(result)
    print(table(results, args.iterations, versions), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
