"""Latency of `runs.wait` for a one-bar trading session: `tradegraph serve` vs `langgraph dev`.

What it measures
    The wall-clock time of `client.runs.wait(thread_id, "trading_session", input=...)` with the
    official `langgraph_sdk` client, for a one-bar daily session (AAPL, 2012-01-03, `rule` decider),
    on a thread created just before (thread creation is not timed). Each server gets 3 untimed
    warm-up runs, then N timed runs (`--iterations`, default 50), each on a new thread. The result is
    a table of median, p99, min and max in milliseconds, and the ratio of the medians.

The two servers
    * tradegraph: `python -m cli serve` (FastAPI + procrastinate workers on Postgres), with
      a user and a model created directly in the database; threads carry `metadata.model_id` and the
      server injects `model_id` and `signature` into the input.
    * langgraph dev: the same graph through this repo's `langgraph.json`, run by `langgraph-cli[inmem]`
      from a separate venv, `.tradegraph/bench-venv` (created on first use; never a project
      dependency). Its nodes reach the same benchmark database through `DATABASE_URL`; the input
      carries `model_id` and `signature` itself because that server injects no identity.

Database
    A uniquely named database is created on `DATABASE_URL`'s server when it is set, else on the
    embedded PostgreSQL under `.tradegraph/`, migrated with `prepare_database`, and dropped at the end.

Running it
    make bench                                         # or: .venv/bin/python bench/runs_wait.py
    .venv/bin/python bench/runs_wait.py --iterations 20 --skip-langgraph-dev

Server logs are written to `.tradegraph/bench-logs/` and printed when something fails; the exit
status is non-zero if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from psycopg.conninfo import make_conninfo

from tradegraph.accounts import create_model, create_user
from tradegraph.bootstrap import prepare_database
from tradegraph.database import CONNECTION_KWARGS, start_embedded
from tradegraph.limits import RiskLimits
from tradegraph.settings import PROJECT_ROOT

GRAPH_ID = "trading_session"
SESSION_INPUT: dict[str, Any] = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-01-03",
    "symbols": ["AAPL"],
    "decider": "rule",
}
WARMUP_RUNS = 3
DATA_DIR = PROJECT_ROOT / ".tradegraph"
LOG_DIR = DATA_DIR / "bench-logs"
BENCH_VENV = DATA_DIR / "bench-venv"
BENCH_VENV_STAMP = BENCH_VENV / ".tradegraph-bench-installed"
LANGGRAPH_DEV_HOME = DATA_DIR / "bench-langgraph-dev"
"""Working directory of `langgraph dev`, so its `.langgraph_api/` state stays out of the checkout."""

READY_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 1200.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 8000
QUIET_ENV = {
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "PYTHONUNBUFFERED": "1",
}
SECRET_ENV = ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def say(message: str) -> None:
    """Progress goes to stderr so stdout holds only the result table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- statistics ------------------------------------------------------------------------------


@dataclass
class Result:
    """The timings of one server, or why it could not be measured."""

    server: str
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples_ms)

    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def p99(self) -> float:
        return percentile(self.samples_ms, 99)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (with 50 samples, p99 is the maximum)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


# --- database --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A user's API key and one of its models."""

    api_key: str
    model_id: int
    signature: str


def admin_url() -> str:
    """The server the benchmark database is created on: DATABASE_URL's, else the embedded one."""
    return os.environ.get("DATABASE_URL") or start_embedded(DATA_DIR)


def create_database(admin: str) -> tuple[str, str]:
    """Create a uniquely named database; returns (name, url)."""
    name = f"tradegraph_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_conninfo(admin, dbname=name)


def drop_database(admin: str, name: str) -> None:
    """Drop the benchmark database, disconnecting whoever is left."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def create_identity(url: str, *, label: str) -> Identity:
    """A fresh user with an API key and a funded model with default limits."""
    suffix = uuid.uuid4().hex[:8]
    async with await psycopg.AsyncConnection.connect(url, **CONNECTION_KWARGS) as conn:  # type: ignore[arg-type]
        user, key = await create_user(conn, name=f"bench-{label}-{suffix}")
        model = await create_model(
            conn,
            user_id=user.id,
            name=f"bench {label}",
            signature=f"bench-{label}-{suffix}",
            initial_cash=Decimal(100_000),
            limits=RiskLimits(),
        )
    return Identity(api_key=key, model_id=int(model["id"]), signature=str(model["signature"]))


# --- server processes ------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    """The environment both servers get: the benchmark database, no tracing, no credentials."""
    env = {**os.environ, **QUIET_ENV, "DATABASE_URL": database_url}
    for name in SECRET_ENV:
        env.pop(name, None)
    return env


class Server:
    """A server subprocess with its output in a log file, in its own process group."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], cwd: Path, port: int):
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.killed = False
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log_path = LOG_DIR / f"{stamp}-{name.replace(' ', '-')}.log"
        self._log = self.log_path.open("w")
        say(f"starting {name}: {' '.join(command)} (log: {self.log_path})")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Poll GET /ok until it answers 200; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with code {self.process.returncode} before ready")
            try:
                if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer GET /ok within {timeout:.0f}s")

    def stop(self) -> int | None:
        """SIGTERM, wait, then SIGKILL the process group if it hangs; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop within {STOP_TIMEOUT_S:.0f}s after SIGTERM; killing it")
                self.killed = True
                self._kill_group()
        self._kill_group()  # leftovers (e.g. worker children) of a server that did stop
        self._log.close()
        return self.process.returncode

    def _kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if self.process.poll() is None:
            self.process.wait(10)

    def log_tail(self) -> str:
        """The end of the server's log."""
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text if len(text) <= LOG_TAIL_CHARS else "...\n" + text[-LOG_TAIL_CHARS:]


def start_tradegraph(database_url: str) -> Server:
    """`tradegraph serve` on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
    return Server("tradegraph", command, env=server_env(database_url), cwd=PROJECT_ROOT, port=port)


def start_langgraph_dev(database_url: str, venv: Path) -> Server:
    """`langgraph dev` from the bench venv, serving this repo's langgraph.json."""
    port = free_port()
    config = write_dev_config()
    shutil.rmtree(LANGGRAPH_DEV_HOME / ".langgraph_api", ignore_errors=True)  # start from no threads
    command = [
        str(venv / "bin" / "langgraph"),
        "dev",
        "--no-browser",
        "--no-reload",
        "--n-jobs-per-worker",
        "10",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(config),
    ]
    env = server_env(database_url)
    env.pop("VIRTUAL_ENV", None)
    return Server("langgraph dev", command, env=env, cwd=LANGGRAPH_DEV_HOME, port=port)


def write_dev_config() -> Path:
    """This repo's langgraph.json with its paths made absolute, in LANGGRAPH_DEV_HOME.

    `langgraph dev` resolves graph files, dependencies and the env file against its working
    directory and keeps its state in `./.langgraph_api/`; running it from LANGGRAPH_DEV_HOME with
    absolute paths serves the same graph without writing into the checkout.
    """
    config = json.loads((PROJECT_ROOT / "langgraph.json").read_text())
    config["dependencies"] = [absolute(dep) for dep in config.get("dependencies", [])]
    config["graphs"] = {gid: absolute_graph(spec) for gid, spec in config.get("graphs", {}).items()}
    if isinstance(config.get("env"), str):
        config["env"] = absolute(config["env"])
    LANGGRAPH_DEV_HOME.mkdir(parents=True, exist_ok=True)
    path = LANGGRAPH_DEV_HOME / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def absolute(path: str) -> str:
    """A config path relative to the repo, made absolute (package names are left alone)."""
    return str((PROJECT_ROOT / path).resolve()) if path.startswith((".", "/")) else path


def absolute_graph(spec: Any) -> Any:
    """A graph spec, `"./file.py:var"` or `{"path": ...}`, with its file path made absolute."""
    if isinstance(spec, dict) and isinstance(spec.get("path"), str):
        return {**spec, "path": absolute_graph(spec["path"])}
    if isinstance(spec, str) and ".py:" in spec:
        file, _, variable = spec.rpartition(":")
        return f"{absolute(file)}:{variable}"
    return spec


# --- the bench venv --------------------------------------------------------------------------


def ensure_bench_venv() -> Path:
    """`.tradegraph/bench-venv` with langgraph-cli[inmem] and this repo (editable); reused if present."""
    if BENCH_VENV_STAMP.exists() and (BENCH_VENV / "bin" / "langgraph").exists():
        return BENCH_VENV
    say(f"creating {BENCH_VENV} (first use; installing langgraph-cli[inmem] takes a minute or two)")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / "bench-venv-install.log"
    python = BENCH_VENV / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", str(BENCH_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        # One resolve for both, pinned like the project's own venv so the graph runs the same code.
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            str(PROJECT_ROOT / "constraints.txt"),
            "langgraph-cli[inmem]",
            "-e",
            str(PROJECT_ROOT),
        ],
    ]
    with log_path.open("w") as log:
        for step in steps:
            log.write(f"$ {' '.join(step)}\n")
            log.flush()
            try:
                code = subprocess.run(
                    step, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
                ).returncode
            except subprocess.TimeoutExpired as exc:
                raise BenchError(f"bench venv step timed out: {' '.join(step)} (log: {log_path})") from exc
            if code != 0:
                tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
                raise BenchError(f"bench venv step failed ({code}): {' '.join(step)}\n{tail}")
    BENCH_VENV_STAMP.write_text("langgraph-cli[inmem] and tradegraph (editable) installed\n")
    return BENCH_VENV


def installed_version(venv: Path, package: str) -> str:
    """A package's version inside the bench venv, for the report."""
    code = f"from importlib.metadata import version; print(version({package!r}))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() or "?"


# --- the timed loop --------------------------------------------------------------------------


def check_final_state(state: Any) -> None:
    """The run must have finished its one bar; anything else is a failed run."""
    if not isinstance(state, dict):
        raise BenchError(f"runs.wait returned {type(state).__name__}, not the final state: {state!r:.500}")
    if state.get("done") is not True or state.get("bars_total") != 1:
        keys = ", ".join(sorted(state)) or "(empty)"
        raise BenchError(f"run did not finish its one bar: done={state.get('done')!r}, keys: {keys}")


async def time_runs(
    url: str, api_key: str | None, run_input: dict[str, Any], thread_metadata: dict[str, Any], n: int
) -> list[float]:
    """Warm up, then time `n` runs.wait calls, each on a new thread; returns milliseconds."""
    client = get_client(url=url, api_key=api_key)
    samples: list[float] = []
    try:
        for i in range(WARMUP_RUNS + n):
            label = f"warm-up run {i + 1}" if i < WARMUP_RUNS else f"timed run {i - WARMUP_RUNS + 1}"
            elapsed_ms = await one_run(client, run_input, thread_metadata, label)
            if i >= WARMUP_RUNS:
                samples.append(elapsed_ms)
    finally:
        await client.aclose()
    return samples


async def one_run(
    client: LangGraphClient, run_input: dict[str, Any], thread_metadata: dict[str, Any], label: str
) -> float:
    """Create a thread (untimed), then time runs.wait on it; returns milliseconds."""
    try:
        thread = await asyncio.wait_for(client.threads.create(metadata=thread_metadata), RUN_TIMEOUT_S)
    except Exception as exc:
        raise BenchError(f"{label}: threads.create failed: {type(exc).__name__}: {exc}") from exc
    thread_id = thread["thread_id"]
    started = time.perf_counter()
    try:
        state = await asyncio.wait_for(client.runs.wait(thread_id, GRAPH_ID, input=run_input), RUN_TIMEOUT_S)
    except TimeoutError as exc:
        raise BenchError(f"{label}: runs.wait took longer than {RUN_TIMEOUT_S:.0f}s") from exc
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise BenchError(f"{label}: runs.wait failed on thread {thread_id}: {reason}") from exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        check_final_state(state)
    except BenchError as exc:
        raise BenchError(f"{label} on thread {thread_id}: {exc}") from exc
    return elapsed_ms


def measure(
    server: Server, api_key: str | None, run_input: dict[str, Any], meta: dict[str, Any], n: int
) -> Result:
    """Wait for the server, run the loop, and always stop the server; failures go in the result."""
    result = Result(server.name)
    try:
        ready_s = server.wait_ready()
        say(f"{server.name} ready in {ready_s:.2f}s; {WARMUP_RUNS} warm-up + {n} timed runs")
        result.samples_ms = asyncio.run(time_runs(server.url, api_key, run_input, meta, n))
    except Exception as exc:  # noqa: BLE001 - every failure is reported with the server log
        result.error = describe(exc)
    finally:
        code = server.stop()
        say(f"{server.name} stopped (exit code {code}{'; -15 is SIGTERM' if code == -15 else ''})")
        if server.killed and result.error is None:
            result.error = f"{server.name} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s and was killed"
    if result.error:
        print_failure(server, result.error)
    return result


def describe(exc: BaseException) -> str:
    """A one-line reason, with the traceback for unexpected errors."""
    if isinstance(exc, BenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"


def print_failure(server: Server, error: str) -> None:
    """The error and the server's log, on stderr."""
    bar = "-" * 100
    print(f"\n{bar}\n{server.name} FAILED: {error}", file=sys.stderr)
    print(f"{bar}\nlog {server.log_path}:\n{server.log_tail()}\n{bar}", file=sys.stderr, flush=True)


# --- the two benchmarks ----------------------------------------------------------------------


def bench_tradegraph(database_url: str, n: int) -> Result:
    """runs.wait against `tradegraph serve`: identity comes from the thread's model."""
    try:
        identity = asyncio.run(create_identity(database_url, label="tradegraph"))
        server = start_tradegraph(database_url)
    except Exception as exc:  # noqa: BLE001
        print(f"tradegraph FAILED before start: {describe(exc)}", file=sys.stderr)
        return Result("tradegraph", error=describe(exc))
    return measure(server, identity.api_key, SESSION_INPUT, {"model_id": identity.model_id}, n)


def bench_langgraph_dev(database_url: str, n: int) -> tuple[Result, str]:
    """runs.wait against `langgraph dev`: the input carries the identity itself."""
    try:
        venv = ensure_bench_venv()
        version = installed_version(venv, "langgraph-api")
        identity = asyncio.run(create_identity(database_url, label="langgraph-dev"))
        run_input = {**SESSION_INPUT, "model_id": identity.model_id, "signature": identity.signature}
        server = start_langgraph_dev(database_url, venv)
    except Exception as exc:  # noqa: BLE001
        print(f"langgraph dev FAILED before start: {describe(exc)}", file=sys.stderr)
        return Result("langgraph dev", error=describe(exc)), "?"
    return measure(server, None, run_input, {}, n), version


# --- report ----------------------------------------------------------------------------------


def machine() -> str:
    """nproc, Python and OS, for the report."""
    return (
        f"nproc={os.cpu_count()}, Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()} {platform.machine()}"
    )


def table(results: list[Result], n: int, versions: dict[str, str]) -> str:
    """The result table, with the ratio of the medians when both servers were measured."""
    lines = [
        f"runs.wait, one-bar daily session (graph {GRAPH_ID!r}), {n} timed runs after {WARMUP_RUNS} warm-up",
        f"machine: {machine()}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        f"{'server':<15} {'n':>4} {'median ms':>10} {'p99 ms':>10} {'min ms':>10} {'max ms':>10}",
    ]
    for r in results:
        if r.ok:
            s = r.samples_ms
            numbers = "".join(f" {v:>10.1f}" for v in (r.median(), r.p99(), min(s), max(s)))
            lines.append(f"{r.server:<15} {len(s):>4}{numbers}")
        else:
            lines.append(f"{r.server:<15} FAILED: {(r.error or 'no samples').splitlines()[0][:80]}")
    by_name = {r.server: r for r in results if r.ok}
    if "tradegraph" in by_name and "langgraph dev" in by_name:
        ratio = by_name["langgraph dev"].median() / by_name["tradegraph"].median()
        lines.append(f"\nratio langgraph-dev median / tradegraph median: {ratio:.2f}x")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=50, help="timed runs per server (default 50)")
    parser.add_argument("--skip-langgraph-dev", action="store_true", help="measure tradegraph only")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    return args


def run(args: argparse.Namespace) -> int:
    """Create the database, measure each server, print the table, drop the database."""
    admin = admin_url()
    name, url = create_database(admin)
    say(f"benchmark database {name}; migrating")
    versions = {"langgraph-sdk (client)": _version("langgraph-sdk"), "langgraph": _version("langgraph")}
    results: list[Result] = []
    try:
        asyncio.run(prepare_database(url))
        results.append(bench_tradegraph(url, args.iterations))
        if not args.skip_langgraph_dev:
            result, api_version = bench_langgraph_dev(url, args.iterations)
            versions["langgraph-api (dev)"] = api_version
            results.append(result)
    finally:
        drop_database(admin, name)
        say(f"dropped {name}")
    print(table(results, args.iterations, versions), flush=True)
    return 0 if results and all(r.ok for r in results) else 1


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def main() -> int:
    args = parse_args()
    try:
        return run(args)
    except Exception as exc:  # noqa: BLE001
        print(f"benchmark failed: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
