"""How writes commit: replayable rows asynchronously (statement by statement), the ledger
synchronously, procrastinate's queries in autocommit (one round trip each)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from graph import checkpointer
from server.runs import events
from server.runs.queue import make_queue_pool
from tests.support.sessions import input_for, run_session
from tradegraph import ledger
from tradegraph.database import ASYNC_COMMIT, make_pool
from tradegraph.ledger import EquityPoint, record_equity

SETTING = "SELECT current_setting('synchronous_commit') AS mode"


async def test_async_commit_holds_for_its_own_statement_only(database_url: str, make_model: Any) -> None:
    """On one pooled connection: a statement that joins ASYNC_COMMIT runs with synchronous commit
    off; every statement after it (a session's checkpoints and equity marks included) finds it on
    again, and what those statements wrote is there. (Stream events are written the same way by
    every streamed run of the server tests.)"""
    model = await make_model()
    pool = make_pool(database_url, max_size=1)  # one connection: every statement below shares it
    await pool.open()
    try:
        async with pool.connection() as conn:
            inside = await (await conn.execute(f"{SETTING} FROM {ASYNC_COMMIT}")).fetchone()
            after = await (await conn.execute(SETTING)).fetchone()
        assert inside is not None and inside["mode"] == "off"
        assert after is not None and after["mode"] == "on"

        thread_id, parts = await run_session(pool, input_for(model, end="2012-01-05"))
        async with pool.connection() as conn:
            await record_equity(
                conn,
                thread_id=thread_id,
                model_id=model["id"],
                points=[EquityPoint(datetime(2012, 1, 6, 21), Decimal("100000"), Decimal("100000"))],
            )
            mode = await (await conn.execute(SETTING)).fetchone()
            saved = await rows_of(conn, "checkpoints", thread_id)
            marks = await rows_of(conn, "equity_points", thread_id)
    finally:
        await pool.close()
    assert mode is not None and mode["mode"] == "on"
    assert saved > 3
    assert marks == 3 + 1  # three bars, and the mark written above
    assert any(p["type"] == "custom" and p["data"].get("type") == "equity" for p in parts)


async def rows_of(conn: Any, table: str, thread_id: str) -> int:
    row = await (
        await conn.execute(f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (thread_id,))
    ).fetchone()
    return int(row["n"])


def test_only_replayable_rows_commit_asynchronously() -> None:
    """Checkpoints, their writes, stream events and equity marks may lose their last moments to a
    database crash (a replay writes them again); orders, fills and fees never do."""
    replayable = [
        checkpointer.SAVE_BATCH,
        checkpointer.UPSERT_WRITES,
        checkpointer.INSERT_NEW_WRITES,
        events.INSERT_EVENTS,
        ledger.UPSERT_EQUITY,
    ]
    money = [
        ledger.PLACE_ORDER,
        ledger.PLACE_AND_FILL,
        ledger.FILL_ORDER,
        ledger.TOUCH_ORDER,
        ledger.CLOSE_ORDER,
        ledger.CHARGE_BORROW_FEE,
        ledger.CLOSE_OTHER_STARTS,
    ]
    assert all(ASYNC_COMMIT in query for query in replayable)
    assert not any(ASYNC_COMMIT in query or "synchronous_commit" in query for query in money)


async def test_queue_queries_are_each_their_own_transaction(database_url: str) -> None:
    """procrastinate's pool hands out connections in autocommit: no BEGIN and COMMIT around each
    query, so two queries on one connection are two transactions."""
    pool = make_queue_pool(database_url)
    await pool.open()
    try:
        async with pool.connection() as conn:
            first = await (await conn.execute("SELECT txid_current()")).fetchone()
            second = await (await conn.execute("SELECT txid_current()")).fetchone()
            assert conn.autocommit
    finally:
        await pool.close()
    assert first is not None and second is not None and first[0] != second[0]
