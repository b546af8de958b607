"""Read-side queries: trades, equity curves and performance per session and per model."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, TypeVar, cast

from psycopg import AsyncConnection
from typing_extensions import TypedDict

from tradegraph.market.prices import Mode
from tradegraph.metrics import Performance, performance
from tradegraph.money import to_money
from tradegraph.sessions import get_session

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
SELECT_LATEST_MARK = """
SELECT p.bar_time, s.mode
FROM equity_points p JOIN sessions s ON s.thread_id = p.thread_id
WHERE p.model_id = %s ORDER BY p.id DESC LIMIT 1
"""
COUNT_MODEL_FILLS = "SELECT count(*) AS n FROM fills WHERE model_id = %s"
COUNT_ORDERS = """
SELECT count(*) AS n FROM orders WHERE model_id = %s AND (%s::text IS NULL OR status = %s)
"""
SELECT_TRADES = """
SELECT o.id, o.client_order_id, o.thread_id, o.bar_time, o.symbol, o.side, o.quantity AS proposed_quantity,
       o.status, o.rule, o.reason, f.quantity, f.price, f.notional
FROM orders o LEFT JOIN fills f ON f.order_id = o.id
WHERE o.model_id = %s AND (%s::text IS NULL OR o.status = %s)
ORDER BY o.id DESC LIMIT %s OFFSET %s
"""

T = TypeVar("T")


class CurvePoint(TypedDict):
    """One bar's mark: the strategy's equity and buy-and-hold beside it."""

    bar_time: datetime
    equity: Decimal
    benchmark: Decimal
    thread_id: NotRequired[str]
    mode: NotRequired[Mode]


class SessionMark(TypedDict):
    """A stored mark of one session, with the session's start (what chaining needs)."""

    thread_id: str
    bar_time: datetime
    equity: Decimal
    benchmark: Decimal
    start_equity: Decimal | None
    mode: Mode


async def _count(conn: AsyncConnection[Any], sql: str, *params: object) -> int:
    row = await (await conn.execute(sql, params)).fetchone()
    return int(row["n"]) if row else 0


async def session_curve(conn: AsyncConnection[Any], *, thread_id: str) -> list[CurvePoint]:
    """Equity and buy-and-hold per bar of one session."""
    rows = await (await conn.execute(SELECT_SESSION_POINTS, (thread_id,))).fetchall()
    return [cast(CurvePoint, dict(r)) for r in rows]


async def count_session_fills(conn: AsyncConnection[Any], *, thread_id: str) -> int:
    """Fills of one session."""
    return await _count(conn, COUNT_SESSION_FILLS, thread_id)


async def session_performance(
    conn: AsyncConnection[Any], *, thread_id: str, points: list[CurvePoint] | None = None
) -> Performance | None:
    """Figures for one session, or None when it has not marked a bar yet (`points`: its curve, when
    the caller has read it already)."""
    session = await get_session(conn, thread_id=thread_id)
    if points is None:
        points = await session_curve(conn, thread_id=thread_id)
    if session is None or not points or session["start_equity"] is None:
        return None
    return performance(
        start_equity=session["start_equity"],
        equity=[p["equity"] for p in points],
        benchmark=[p["benchmark"] for p in points],
        trades=await count_session_fills(conn, thread_id=thread_id),
        mode=session["mode"] or "daily",
    )


def chain_benchmark(marks: list[SessionMark], initial_cash: Decimal) -> list[CurvePoint]:
    """A model's curve across sessions, with buy-and-hold chained from one session to the next.

    Each session's benchmark is a return on that session's start equity; chaining multiplies the
    sessions' returns, as if the buy-and-hold investor rolled over into each new session.
    """
    curve: list[CurvePoint] = []
    carried, thread, ratio = Decimal(1), None, Decimal(1)
    for mark in marks:
        if mark["thread_id"] != thread:
            carried, thread = carried * ratio, mark["thread_id"]
        start = mark["start_equity"]
        ratio = mark["benchmark"] / start if start else Decimal(1)
        curve.append(
            {
                "thread_id": mark["thread_id"],
                "bar_time": mark["bar_time"],
                "mode": mark["mode"],
                "equity": mark["equity"],
                "benchmark": to_money(initial_cash * carried * ratio),
            }
        )
    return curve


async def model_curve(
    conn: AsyncConnection[Any], *, model_id: int, initial_cash: Decimal
) -> list[CurvePoint]:
    """The model's marks across its sessions in order, with buy-and-hold chained across sessions."""
    rows = await (await conn.execute(SELECT_MODEL_POINTS, (model_id,))).fetchall()
    return chain_benchmark([cast(SessionMark, dict(r)) for r in rows], initial_cash)


async def model_performance(
    conn: AsyncConnection[Any], *, model_id: int, initial_cash: Decimal
) -> tuple[Performance, list[CurvePoint]]:
    """Figures over everything the model has traded, from its initial cash, and the curve they come from."""
    curve = await model_curve(conn, model_id=model_id, initial_cash=initial_cash)
    figures = performance(
        start_equity=initial_cash,
        equity=[p["equity"] for p in curve],
        benchmark=[p["benchmark"] for p in curve],
        trades=await _count(conn, COUNT_MODEL_FILLS, model_id),
        mode=curve[-1].get("mode", "daily") if curve else "daily",
    )
    return figures, curve


async def latest_mark(conn: AsyncConnection[Any], *, model_id: int) -> tuple[datetime, Mode] | None:
    """Bar time and session mode of the model's most recently written equity point, if any."""
    row = await (await conn.execute(SELECT_LATEST_MARK, (model_id,))).fetchone()
    if row is None:
        return None
    return row["bar_time"], "intraday" if row["mode"] == "intraday" else "daily"


async def trades(
    conn: AsyncConnection[Any], *, model_id: int, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """The model's orders, newest first, with their fill (if any) and risk reason."""
    rows = await (await conn.execute(SELECT_TRADES, (model_id, status, status, limit, offset))).fetchall()
    return [dict(r) for r in rows]


async def count_orders(conn: AsyncConnection[Any], *, model_id: int, status: str | None) -> int:
    """How many orders the model has, optionally only `filled` or `rejected` ones."""
    return await _count(conn, COUNT_ORDERS, model_id, status, status)


def sample_evenly(values: Sequence[T], points: int) -> list[T]:
    """Up to `points` values picked evenly from `values`, first and last included (for sparklines)."""
    if len(values) <= points:
        return list(values)
    step = (len(values) - 1) / (points - 1)
    return [values[round(i * step)] for i in range(points)]
