"""A session with orders resting in the book, killed with SIGKILL mid-session and resumed, books
exactly what an uninterrupted session books: the same fills at the same bars and prices, none twice."""

import asyncio
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

from psycopg_pool import AsyncConnectionPool

from tests.support.ledger_checks import assert_reconciles
from tests.support.sessions import input_for, run_session, state_of
from tradegraph.accounts import BotTerms, create_model, create_user
from tradegraph.limits import RiskLimits
from tradegraph.settings import PROJECT_ROOT
from tradegraph.terms import Costs, Strategy

BRACKETS = BotTerms(
    strategy=Strategy(take_profit_pct=Decimal(4), stop_loss_pct=Decimal(3)),
    costs=Costs(commission_per_share=Decimal("0.005"), commission_min=Decimal(1), slippage_bps=Decimal(5)),
)
WINDOW = {"end": "2012-06-29"}
FILLS = """
SELECT f.bar_time, f.symbol, f.side, f.quantity, f.price, f.commission, o.order_type, o.leg
FROM fills f JOIN orders o ON o.id = f.order_id
WHERE f.model_id = %s ORDER BY f.bar_time, f.symbol, f.side, o.leg
"""
OPEN_ORDERS = (
    "SELECT count(*) AS n FROM orders WHERE model_id = %s AND status IN ('open', 'partially_filled')"
)
ORDER_STATES = """
SELECT bar_time, symbol, side, order_type, leg, status, filled_quantity FROM orders
WHERE model_id = %s ORDER BY bar_time, symbol, side, leg NULLS FIRST
"""


async def bracket_bot(pool: AsyncConnectionPool) -> dict[str, Any]:
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"brackets-{uuid.uuid4().hex[:8]}")
        return dict(
            await create_model(
                conn,
                user_id=user.id,
                name="bracket bot",
                signature=f"br-{uuid.uuid4().hex[:8]}",
                initial_cash=Decimal(100000),
                limits=RiskLimits(),
                terms=BRACKETS,
            )
        )


async def rows(pool: AsyncConnectionPool, sql: str, model_id: int) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return [dict(r) for r in await (await conn.execute(sql, (model_id,))).fetchall()]


def run_process(job: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    import json

    command = [sys.executable, "-m", "tests.support.session_process", json.dumps(job)]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


async def test_a_killed_session_with_resting_orders_resumes_to_the_same_fills(pool, database_url):
    steady, crashed = await bracket_bot(pool), await bracket_bot(pool)
    await run_session(pool, input_for(steady, **WINDOW))
    expected = await rows(pool, FILLS, steady["id"])
    resting_fills = [f for f in expected if f["order_type"] != "market"]
    assert len(resting_fills) >= 5, "the brackets' exits fill in this window"

    thread_id = f"crash-orders-{crashed['id']}"
    job = {
        "url": database_url,
        "thread_id": thread_id,
        "input": input_for(crashed, **WINDOW),
        "kill_after_resting_fills": 3,
    }
    killed = await asyncio.to_thread(run_process, job)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (await state_of(pool, thread_id)).next, "the kill left the session unfinished"
    at_kill = await rows(pool, FILLS, crashed["id"])
    assert len(at_kill) < len(expected)
    assert [f for f in at_kill if f["order_type"] != "market"], "it died after exits had filled"

    await run_session(pool, None, thread_id=thread_id)  # resume from the last checkpoint
    assert (await state_of(pool, thread_id)).values["done"]
    assert await rows(pool, FILLS, crashed["id"]) == expected  # same bars, prices, costs; nothing twice
    steady_orders = await rows(pool, ORDER_STATES, steady["id"])
    assert await rows(pool, ORDER_STATES, crashed["id"]) == steady_orders
    assert {o["status"] for o in steady_orders} <= {"filled", "cancelled", "rejected", "expired"}
    assert (await rows(pool, OPEN_ORDERS, crashed["id"]))[0]["n"] == 0, "the session's end closed its orders"
    assert await assert_reconciles(pool, crashed["id"]) == await assert_reconciles(pool, steady["id"])
