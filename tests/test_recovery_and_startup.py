"""Crash recovery of runs across server processes, and the start-up rules of each environment."""

import asyncio
import signal
import subprocess
import sys
import time

import httpx
import psycopg
from langgraph_sdk import get_client
from psycopg.rows import dict_row

from server.bootstrap import check_startup
from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.server import ServerProcess, start_worker
from tradegraph.database import make_pool
from tradegraph.keys import hash_key
from tradegraph.settings import PROJECT_ROOT, Settings

ONE_MONTH = {"mode": "daily", "start": "2012-01-03", "end": "2012-01-31", "symbols": ["AAPL"]}
A_WEEK_OF_MINUTES = {
    "mode": "intraday",
    "start": "2012-03-01",
    "end": "2012-03-07",
    "symbols": ["AAPL", "MSFT", "IBM"],
}
"""Long enough (1,950 minute bars, about 12 s in-process: minute bars cross their averages often, so
few are quiet) to outlast a worker's 5 s graceful shutdown. Twelve years of daily bars no longer do."""
THREE_YEARS = {
    "mode": "daily",
    "start": "2009-01-02",
    "end": "2011-12-30",
    "symbols": ["AAPL", "MSFT", "IBM"],
}
RUN_ROW = "SELECT status, attempt FROM runs WHERE run_id = %s"
DUPLICATES = "SELECT client_order_id FROM orders GROUP BY client_order_id HAVING count(*) > 1"
LEDGER = """
SELECT c.cash, m.initial_cash + COALESCE((SELECT sum(CASE side WHEN 'buy' THEN -notional ELSE notional END)
                                          FROM fills WHERE model_id = m.id), 0) AS expected
FROM models m JOIN cash_accounts c ON c.model_id = m.id WHERE m.id = %s
"""


async def connect(url):
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)


async def test_a_run_whose_server_was_killed_continues_on_another_within_30s(own_database_url):
    url = own_database_url
    key, model = await owner_and_model(url)
    first = ServerProcess(url, ARTIFACTS / "crash-first.log", workers=1).wait_ready()
    client = get_client(url=first.url, api_key=key)
    thread = await client.threads.create(metadata={"model_id": model["id"]})
    run = await client.runs.create(
        thread["thread_id"], "trading_session", input=THREE_YEARS, stream_mode="custom"
    )
    async with await connect(url) as conn:
        for _ in range(300):
            row = await (
                await conn.execute(
                    "SELECT count(*) AS n FROM equity_points WHERE model_id = %s", (model["id"],)
                )
            ).fetchone()
            if row["n"] >= 100:
                break
            await asyncio.sleep(0.05)
    first.kill()  # kill -9 in the middle of the session
    async with await connect(url) as conn:
        marked_at_crash = (
            await (
                await conn.execute(
                    "SELECT count(*) AS n FROM equity_points WHERE model_id = %s", (model["id"],)
                )
            ).fetchone()
        )["n"]
    assert 100 <= marked_at_crash < 756, "the crash came mid-session"

    second = ServerProcess(url, ARTIFACTS / "crash-second.log", workers=1).wait_ready()
    killed_at = time.monotonic()
    client = get_client(url=second.url, api_key=key)
    try:
        async with await connect(url) as conn:
            while (await (await conn.execute(RUN_ROW, (run["run_id"],))).fetchone())["attempt"] < 2:
                assert time.monotonic() - killed_at < 30, "the run was not picked up again within 30 s"
                await asyncio.sleep(0.2)
        result = await client.runs.join(thread["thread_id"], run["run_id"])
        assert result["done"] is True and result["bar_index"] == result["bars_total"] - 1
        assert (result["model_id"], result["signature"]) == (model["id"], model["signature"])
        async with await connect(url) as conn:
            row = await (await conn.execute(RUN_ROW, (run["run_id"],))).fetchone()
            assert (row["status"], row["attempt"]) == ("success", 2)
            assert await (await conn.execute(DUPLICATES)).fetchall() == []
            ledger = await (await conn.execute(LEDGER, (model["id"],))).fetchone()
            assert ledger["cash"] == ledger["expected"]
            points = await (
                await conn.execute(
                    "SELECT count(*) AS n FROM equity_points WHERE model_id = %s", (model["id"],)
                )
            ).fetchone()
            assert points["n"] == result["bars_total"]
        parts = [
            p async for p in client.runs.join_stream(thread["thread_id"], run["run_id"], last_event_id="0")
        ]
        attempts = [p.data["attempt"] for p in parts if p.event == "metadata"]
        assert attempts == [1, 2] and parts[-1].event == "end"
    finally:
        second.stop()


def serve_once(url: str | None, env: str, log_name: str) -> tuple[int, str]:
    """Start `tradegraph serve` and return its exit code and output once it exits (or 15 s pass)."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "TRADEGRAPH_ENV": env,
        "HOME": "/root",
        "TRADEGRAPH_DATA_DIR": str(PROJECT_ROOT / ".tradegraph"),
    }
    if url:
        environment["DATABASE_URL"] = url
    process = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    (ARTIFACTS / log_name).write_text(process.stdout + process.stderr)
    return process.returncode, process.stdout + process.stderr


def test_production_refuses_the_embedded_database():
    code, output = serve_once(None, "production", "prod-embedded.log")
    assert code != 0 and "production needs DATABASE_URL" in output


def test_production_refuses_without_users_or_with_a_development_key(own_database_url):
    code, output = serve_once(own_database_url, "production", "prod-no-users.log")
    assert code != 0 and "production has no users" in output
    with psycopg.connect(own_database_url, autocommit=True) as conn:
        user_id = conn.execute("INSERT INTO users (name) VALUES ('ops') RETURNING id").fetchone()[0]
        conn.execute(
            "INSERT INTO api_keys (user_id, key_hash, key_prefix) VALUES (%s, %s, 'dev')",
            (user_id, hash_key("changeme")),
        )
    code, output = serve_once(own_database_url, "production", "prod-dev-key.log")
    assert code != 0 and "known development key" in output


def test_development_creates_a_local_user_with_a_fresh_random_key(own_database_url):
    server = ServerProcess(
        own_database_url, ARTIFACTS / "dev-first-start.log", extra_env={"TRADEGRAPH_ENV": "development"}
    )
    server.wait_ready()
    try:
        log = server.log()
        key = log.split("is:\n", 1)[1].splitlines()[0].strip()
        assert key.startswith("tg_") and len(key) > 40
        assert (
            httpx.post(f"{server.url}/threads/search", json={}, headers={"x-api-key": key}).status_code == 200
        )
    finally:
        server.stop()
    again = ServerProcess(
        own_database_url, ARTIFACTS / "dev-second-start.log", extra_env={"TRADEGRAPH_ENV": "development"}
    )
    again.wait_ready()
    again.stop()
    assert "created development user" not in again.log(), "the local user is created once"
    with psycopg.connect(own_database_url) as conn:
        stored = conn.execute("SELECT key_hash FROM api_keys").fetchall()
    assert stored == [(hash_key(key),)], "only the hash is stored"


async def test_two_processes_starting_together_on_a_fresh_database_share_one_local_user(own_database_url):
    """Both see no user, both create `local`: the one that loses the race starts up all the same
    (it failed with a unique violation when two servers started at once)."""
    settings = Settings(env="development")
    pools = [make_pool(own_database_url, max_size=2) for _ in range(4)]
    for pool in pools:
        await pool.open()
    try:
        await asyncio.gather(*(check_startup(pool, settings) for pool in pools))
    finally:
        for pool in pools:
            await pool.close()
    with psycopg.connect(own_database_url) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("local",)]


async def test_sigterm_hands_a_running_session_to_the_next_server(own_database_url):
    url = own_database_url
    key, model = await owner_and_model(url)
    first = ServerProcess(url, ARTIFACTS / "handoff-first.log", workers=1).wait_ready()
    client = get_client(url=first.url, api_key=key)
    thread = await client.threads.create(metadata={"model_id": model["id"]})
    run = await client.runs.create(thread["thread_id"], "trading_session", input=A_WEEK_OF_MINUTES)
    async with await connect(url) as conn:
        for _ in range(600):
            row = await (await conn.execute(RUN_ROW, (run["run_id"],))).fetchone()
            if row["status"] == "running":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the run never started on the first server")
    assert first.stop() in (0, -15)
    log = first.log()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    second = ServerProcess(url, ARTIFACTS / "handoff-second.log", workers=1).wait_ready()
    try:
        result = await get_client(url=second.url, api_key=key).runs.join(thread["thread_id"], run["run_id"])
        assert result["done"] is True
        async with await connect(url) as conn:
            row = await (await conn.execute(RUN_ROW, (run["run_id"],))).fetchone()
            assert row["status"] == "success" and row["attempt"] >= 2
            assert await (await conn.execute(DUPLICATES)).fetchall() == []
            ledger = await (await conn.execute(LEDGER, (model["id"],))).fetchone()
            assert ledger["cash"] == ledger["expected"]
    finally:
        second.stop()


async def test_an_api_only_server_and_a_separate_worker_process_run_sessions(own_database_url):
    url = own_database_url
    key, model = await owner_and_model(url)
    api = ServerProcess(url, ARTIFACTS / "api-only.log", workers=0).wait_ready()
    worker = start_worker(url, ARTIFACTS / "worker.log")
    try:
        client = get_client(url=api.url, api_key=key)
        thread = await client.threads.create(metadata={"model_id": model["id"]})
        result = await client.runs.wait(thread["thread_id"], "trading_session", input=ONE_MONTH)
        assert result["done"] is True and result["bars_total"] == 20
    finally:
        api.stop()
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    assert "Traceback" not in (ARTIFACTS / "worker.log").read_text()
