"""Read-side queries: trades, equity curves and performance per session and per model."""

from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from tradegraph.metrics import Performance, performance

SELECT_SESSION = "SELECT thread_id, model_id, mode, start_equity FROM sessions WHERE thread_id = %s"
SELECT_SESSION_POINTS = """
SELECT bar_time, equity, benchmark FROM equity_points WHERE thread_id = %s ORDER BY bar_time
"""
COUNT_SESSION_FILLS = """
SELECT count(*) AS n FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.thread_id = %s
"""
SELECT_MODEL_POINTS = """
SELECT p.thread_id, p.bar_time, p.equity, p.benchmark, s.start_equity, s.mode
FROM equity_points p JOIN sessions s ON s.thread_id = p.thread_id
WHERE p.model_id = %s ORDER BY p.id
"""
COUNT_MODEL_FILLS = "SELECT count(*) AS n FROM fills WHERE model_id = %s"
SELECT_TRADES = """
SELECT o.id, o.client_order_id, o.thread_id, o.bar_time, o.symbol, o.side, o.quantity AS proposed_quantity,
       o.status, o.rule, o.reason, f.quantity, f.price, f.notional
FROM orders o LEFT JOIN fills f ON f.order_id = o.id
WHERE o.model_id = %s AND (%s::text IS NULL OR o.status = %s)
ORDER BY o.id DESC LIMIT %s OFFSET %s
"""


async def _count(conn: AsyncConnection[Any], sql: str, param: object) -> int:
    row = await (await conn.execute(sql, (param,))).fetchone()
    return int(row["n"]) if row else 0


async def session_curve(conn: AsyncConnection[Any], *, thread_id: str) -> list[dict[str, Any]]:
    """Equity and buy-and-hold per bar of one session."""
    rows = await (await conn.execute(SELECT_SESSION_POINTS, (thread_id,))).fetchall()
    return [dict(r) for r in rows]


async def session_performance(conn: AsyncConnection[Any], *, thread_id: str) -> Performance | None:
    """Figures for one session, or None when it has not marked a bar yet."""
    session = await (await conn.execute(SELECT_SESSION, (thread_id,))).fetchone()
    points = await session_curve(conn, thread_id=thread_id)
    if session is None or not points:
        return None
    return performance(
        start_equity=session["start_equity"],
        equity=[p["equity"] for p in points],
        benchmark=[p["benchmark"] for p in points],
        trades=await _count(conn, COUNT_SESSION_FILLS, thread_id),
        mode=session["mode"] or "daily",
    )


async def model_curve(
    conn: AsyncConnection[Any], *, model_id: int, initial_cash: Decimal
) -> list[dict[str, Any]]:
    """The model's marks across its sessions in order, with buy-and-hold chained across sessions."""
    rows = await (await conn.execute(SELECT_MODEL_POINTS, (model_id,))).fetchall()
    curve: list[dict[str, Any]] = []
    carried, thread, ratio = Decimal(1), None, Decimal(1)
    for row in rows:
        if row["thread_id"] != thread:
            carried, thread = carried * ratio, row["thread_id"]
        ratio = row["benchmark"] / row["start_equity"] if row["start_equity"] else Decimal(1)
        curve.append(
            {
                "thread_id": row["thread_id"],
                "bar_time": row["bar_time"],
                "mode": row["mode"],
                "equity": row["equity"],
                "benchmark": (initial_cash * carried * ratio).quantize(Decimal("0.0001")),
            }
        )
    return curve


async def model_performance(
    conn: AsyncConnection[Any], *, model_id: int, initial_cash: Decimal
) -> tuple[Performance, list[dict[str, Any]]]:
    """Figures over everything the model has traded, from its initial cash, and the curve they come from."""
    curve = await model_curve(conn, model_id=model_id, initial_cash=initial_cash)
    return curve_performance(
        curve, initial_cash, trades=await _count(conn, COUNT_MODEL_FILLS, model_id)
    ), curve


def curve_performance(curve: list[dict[str, Any]], initial_cash: Decimal, *, trades: int) -> Performance:
    """Figures of a model curve."""
    return performance(
        start_equity=initial_cash,
        equity=[p["equity"] for p in curve],
        benchmark=[p["benchmark"] for p in curve],
        trades=trades,
        mode=curve[-1]["mode"] if curve else "daily",
    )


async def trades(
    conn: AsyncConnection[Any], *, model_id: int, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """The model's orders, newest first, with their fill (if any) and risk reason."""
    rows = await (await conn.execute(SELECT_TRADES, (model_id, status, status, limit, offset))).fetchall()
    return [dict(r) for r in rows]
