"""Retention: prune, TTL and the sweep keep a finished session openable and drop what it no longer needs."""

import asyncio
import subprocess
import sys

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError
from psycopg_pool import AsyncConnectionPool

from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.checkpoints import CHECKPOINT_TABLES, count, rows_per_table, unreferenced_blobs
from tests.support.ledger_checks import assert_reconciles
from tests.support.server import ServerProcess, clean_env
from tests.test_api_protocol import LONG, ONE_WEEK, wait_status
from tradegraph.database import make_pool
from tradegraph.settings import PROJECT_ROOT

EVENTS_OF_THREAD = "SELECT count(*) FROM run_events e JOIN runs r USING (run_id) WHERE r.thread_id = %s"
EQUITY_OF_THREAD = "SELECT count(*) FROM equity_points WHERE thread_id = %s"
ORDERS_OF_THREAD = "SELECT count(*) FROM orders WHERE thread_id = %s"


def sweep(database_url: str, *args: str) -> str:
    """`tradegraph retention` as an operator runs it; its report line."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "retention", *args],
        cwd=PROJECT_ROOT,
        env=clean_env({"DATABASE_URL": database_url, "TRADEGRAPH_ENV": "test"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def expired(pool: AsyncConnectionPool, *thread_ids: str, within_s: float = 20.0) -> None:
    """Wait until the database clock has passed every thread's expiry."""
    due = "SELECT count(*) FROM threads WHERE thread_id::text = ANY(%s) AND status <> 'busy'"
    due += " AND updated_at + make_interval(secs => ttl_minutes * 60) <= now()"
    for _ in range(int(within_s * 10)):
        if await count(pool, due, list(thread_ids)) == len(thread_ids):
            return
        await asyncio.sleep(0.1)
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT thread_id, status, updated_at, now() FROM threads WHERE thread_id::text = ANY(%s)",
                (list(thread_ids),),
            )
        ).fetchall()
    raise AssertionError(f"threads never expired: {rows}")


async def finished_session(client, model, **thread_options) -> str:
    thread_id = (await client.threads.create(metadata={"model_id": model["id"]}, **thread_options))[
        "thread_id"
    ]
    result = await client.runs.wait(thread_id, "trading_session", input=ONE_WEEK)
    assert result["done"] is True
    return thread_id


async def test_prune_keep_latest_keeps_the_final_state_ledger_and_curve(server, pool, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    thread_id = await finished_session(client, model)
    before = await client.threads.get_state(thread_id)
    rows = await rows_per_table(pool, thread_id)
    equity, orders = (
        await count(pool, EQUITY_OF_THREAD, thread_id),
        await count(pool, ORDERS_OF_THREAD, thread_id),
    )
    assert rows["checkpoints"] > 5 and equity == 4 and await count(pool, EVENTS_OF_THREAD, thread_id) > 0

    stranger = get_client(url=server.url, api_key=(await make_user())["api_key"])
    assert await stranger.threads.prune([thread_id], strategy="keep_latest") == {"pruned_count": 0}
    assert await rows_per_table(pool, thread_id) == rows, "another user's prune changes nothing"

    assert await client.threads.prune([thread_id], strategy="keep_latest") == {"pruned_count": 1}
    after = await rows_per_table(pool, thread_id)
    assert after["checkpoints"] == 1
    assert after["checkpoint_blobs"] < rows["checkpoint_blobs"]
    assert await unreferenced_blobs(pool, thread_id) == 0
    state = await client.threads.get_state(thread_id)  # Studio still opens it, at its final state
    assert state["values"] == before["values"]
    assert state["checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert len(await client.threads.get_history(thread_id, limit=50)) == 1
    assert await count(pool, EVENTS_OF_THREAD, thread_id) == 0, "stored stream events go"
    assert await count(pool, EQUITY_OF_THREAD, thread_id) == equity, "the equity curve stays"
    assert await count(pool, ORDERS_OF_THREAD, thread_id) == orders, "the orders stay"
    assert len(await client.runs.list(thread_id)) == 1, "the run stays, with its status"
    await assert_reconciles(pool, model["id"])


async def test_prune_delete_leaves_no_checkpoint_rows_and_keeps_the_ledger(
    server, pool, make_user, make_model
):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    thread_id = await finished_session(client, model)
    orders = await count(pool, ORDERS_OF_THREAD, thread_id)

    assert await client.threads.prune([thread_id], strategy="delete") == {"pruned_count": 1}
    assert await rows_per_table(pool, thread_id) == dict.fromkeys(CHECKPOINT_TABLES, 0)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": owner["api_key"]}) as http:
        assert (await http.get(f"/threads/{thread_id}")).status_code == 404
        assert await count(pool, EVENTS_OF_THREAD, thread_id) == 0
        other = await finished_session(client, model)
        deleted = await http.delete(f"/threads/{other}")  # DELETE /threads/{id} removes the same rows
        assert deleted.status_code == 204
    assert sum((await rows_per_table(pool, other)).values()) == 0
    assert await count(pool, ORDERS_OF_THREAD, thread_id) == orders, (
        "money history is the ledger's, not the thread's"
    )
    await assert_reconciles(pool, model["id"])


async def test_prune_refuses_busy_threads_and_bad_bodies_changing_nothing(
    server, pool, make_user, make_model
):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    done = await finished_session(client, model)
    busy = (await client.threads.create(metadata={"model_id": model["id"]}))["thread_id"]
    run = await client.runs.create(busy, "trading_session", input=LONG)
    await wait_status(client, busy, run["run_id"], {"running"})
    rows = await rows_per_table(pool, done)

    with pytest.raises(ConflictError) as refused:
        await client.threads.prune([done, busy], strategy="delete")
    assert busy in str(refused.value.response.text)
    assert await rows_per_table(pool, done) == rows and (await client.threads.get(done))["thread_id"] == done
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": owner["api_key"]}) as http:
        bad = await http.post("/threads/prune", json={"thread_ids": [done], "strategy": "everything"})
        assert bad.status_code == 422 and "strategy" in bad.text
        empty = await http.post("/threads/prune", json={"thread_ids": [], "strategy": "delete"})
        assert empty.status_code == 422 and "thread_ids" in empty.text
        bad_ttl = await http.post("/threads", json={"ttl": {"ttl": -5, "strategy": "delete"}})
        assert bad_ttl.status_code == 422 and "ttl" in bad_ttl.text
    assert await rows_per_table(pool, done) == rows
    await client.runs.cancel(busy, run["run_id"], action="interrupt")


async def test_ttl_deletes_or_prunes_expired_threads_and_spares_the_rest(server, pool, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    doomed = await finished_session(client, model, ttl=0.05)  # the SDK's bare minutes: strategy delete
    trimmed = await finished_session(client, model, ttl={"ttl": 0.05, "strategy": "keep_latest"})
    spared = await finished_session(client, model)
    later = await finished_session(client, model)
    patched = await client.threads.update(later, metadata={}, ttl={"ttl": 600, "strategy": "delete"})
    assert patched["ttl"] == {"ttl": 600, "strategy": "delete"}
    final = await client.threads.get_state(trimmed)
    spared_rows = await rows_per_table(pool, spared)
    await expired(pool, doomed, trimmed)  # 0.05 minutes (3 s) after each thread's last activity

    report = sweep(server.database_url)  # the server's own periodic sweep may have run first: check rows
    assert report.startswith("threads deleted: "), report
    assert sum((await rows_per_table(pool, doomed)).values()) == 0
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": owner["api_key"]}) as http:
        assert (await http.get(f"/threads/{doomed}")).status_code == 404
    assert (await rows_per_table(pool, trimmed))["checkpoints"] == 1
    assert (await client.threads.get_state(trimmed))["values"] == final["values"]
    assert await rows_per_table(pool, spared) == spared_rows, "no ttl: untouched"
    assert (await rows_per_table(pool, later))["checkpoints"] > 1, "ttl not expired: untouched"
    await assert_reconciles(pool, model["id"])


async def test_the_sweep_prunes_settled_sessions_after_retention(own_database_url):
    """An own server and database: `--now` prunes every settled thread, which must not reach other tests."""
    server = ServerProcess(own_database_url, ARTIFACTS / "retention.log", workers=2).wait_ready()
    pool = make_pool(own_database_url, max_size=4)
    await pool.open()
    try:
        key, model = await owner_and_model(own_database_url)
        client = get_client(url=server.url, api_key=key)
        settled = await finished_session(client, model)
        paused = (await client.threads.create(metadata={"model_id": model["id"]}))["thread_id"]
        await client.runs.wait(paused, "trading_session", input=ONE_WEEK, interrupt_before=["execute"])
        paused_rows = await rows_per_table(pool, paused)

        assert "threads pruned: 0" in sweep(own_database_url), "within the default retention: nothing"
        assert (await rows_per_table(pool, settled))["checkpoints"] > 1

        report = sweep(own_database_url, "--now")
        assert "threads pruned: 1" in report, report
        assert (await rows_per_table(pool, settled))["checkpoints"] == 1
        assert await count(pool, EVENTS_OF_THREAD, settled) == 0
        assert await rows_per_table(pool, paused) == paused_rows, "a paused session is not settled: untouched"
        assert await count(pool, "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'todo'") == 0
        resumed = await client.runs.wait(paused, "trading_session", input=None)
        assert resumed["done"] is True and resumed["bar_index"] == 3, "the paused session still continues"
    finally:
        await pool.close()
        server.stop()


async def test_a_rolled_back_run_leaves_no_checkpoint_rows_or_unreferenced_blobs(
    server, pool, make_user, make_model
):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    thread_id = await finished_session(client, model)
    before = await rows_per_table(pool, thread_id)
    doomed = await client.runs.create(thread_id, "trading_session", input=LONG)
    await wait_status(client, thread_id, doomed["run_id"], {"running"})
    for _ in range(50):  # a held run's checkpoints are saved in batches, at least once a second
        if (await rows_per_table(pool, thread_id))["checkpoint_blobs"] > before["checkpoint_blobs"]:
            break
        await asyncio.sleep(0.1)
    assert (await rows_per_table(pool, thread_id))["checkpoint_blobs"] > before["checkpoint_blobs"]
    await client.runs.cancel(thread_id, doomed["run_id"], action="rollback")
    for _ in range(100):
        if len(await client.runs.list(thread_id)) == 1:
            break
        await asyncio.sleep(0.1)
    assert len(await client.runs.list(thread_id)) == 1
    for _ in range(30):  # the cancelled step's last writes may land just after; they go too
        if await rows_per_table(pool, thread_id) == before:
            break
        await asyncio.sleep(0.1)
    assert await rows_per_table(pool, thread_id) == before
    assert await unreferenced_blobs(pool, thread_id) == 0
