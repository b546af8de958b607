"""Read-side queries: trades, equity curves and performance per session and per model."""

from collections.abc import Sequence
from dataclasses import dataclass
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
SELECT_SESSION_TRADED = """
SELECT f.symbol, f.side, count(*) AS fills, sum(f.quantity)::bigint AS shares
FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.thread_id = %s
GROUP BY f.symbol, f.side ORDER BY f.symbol, f.side
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
SELECT count(*) AS n FROM orders WHERE model_id = %s AND (%s::text[] IS NULL OR status = ANY(%s))
"""
_ORDERS_WITH_FILLS = """
SELECT o.id, o.client_order_id, o.thread_id, o.bar_time, o.symbol, o.side, o.quantity AS proposed_quantity,
       o.order_type, o.time_in_force, o.limit_price, o.stop_price, o.trail_percent, o.trail_anchor,
       o.take_profit, o.stop_loss, o.stop_loss_limit, o.parent_id, o.leg, o.good_for,
       o.status, o.rule, o.reason, o.filled_quantity, o.evaluated_at AS last_bar,
       f.quantity, f.price, f.notional, f.commission, f.slippage
FROM orders o LEFT JOIN LATERAL (
    SELECT sum(quantity)::bigint AS quantity, round(sum(notional) / sum(quantity), 4) AS price,
           sum(notional) AS notional, sum(commission) AS commission, sum(slippage) AS slippage
    FROM fills WHERE order_id = o.id HAVING count(*) > 0
) f ON true
"""
SELECT_ORDERS = (
    _ORDERS_WITH_FILLS
    + "WHERE o.model_id = %s AND (%s::text[] IS NULL OR o.status = ANY(%s))\n"
    + "ORDER BY o.id DESC LIMIT %s OFFSET %s"
)
"""Orders newest first, each with its fills summed: shares, average price, notional and costs."""
SELECT_ORDER = _ORDERS_WITH_FILLS + "WHERE o.model_id = %s AND o.id = %s"
SELECT_ORDER_EVENTS = """
SELECT e.order_id, e.bar_time, e.status, e.filled_quantity, e.reason
FROM order_events e WHERE e.order_id = ANY(%s) ORDER BY e.order_id, e.id
"""
SELECT_COSTS = """
SELECT COALESCE((SELECT sum(f.commission) FROM fills f {fills}), 0) AS commissions,
       COALESCE((SELECT sum(f.slippage) FROM fills f {fills}), 0) AS slippage,
       COALESCE((SELECT sum(b.amount) FROM borrow_fees b {fees}), 0) AS borrow_fees
"""
SELECT_SESSION_COSTS = SELECT_COSTS.format(
    fills="JOIN orders o ON o.id = f.order_id WHERE o.thread_id = %(key)s", fees="WHERE b.thread_id = %(key)s"
)
SELECT_MODEL_COSTS = SELECT_COSTS.format(
    fills="WHERE f.model_id = %(key)s", fees="WHERE b.model_id = %(key)s"
)
STATUS_GROUPS = {"open": ["open", "partially_filled"]}
"""`open` means every order that may still fill; other statuses are themselves."""


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


class Traded(TypedDict):
    """What one session filled of one symbol on one side."""

    symbol: str
    side: str
    fills: int
    shares: int


async def session_traded(conn: AsyncConnection[Any], *, thread_id: str) -> list[Traded]:
    """Fills and shares of one session per symbol and side."""
    rows = await (await conn.execute(SELECT_SESSION_TRADED, (thread_id,))).fetchall()
    return [cast(Traded, dict(r)) for r in rows]


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
        costs=(await costs_paid(conn, thread_id=thread_id)).total,
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
        costs=(await costs_paid(conn, model_id=model_id)).total,
    )
    return figures, curve


async def latest_mark(conn: AsyncConnection[Any], *, model_id: int) -> tuple[datetime, Mode] | None:
    """Bar time and session mode of the model's most recently written equity point, if any."""
    row = await (await conn.execute(SELECT_LATEST_MARK, (model_id,))).fetchone()
    if row is None:
        return None
    return row["bar_time"], "intraday" if row["mode"] == "intraday" else "daily"


def _statuses(status: str | None) -> list[str] | None:
    return None if status is None else STATUS_GROUPS.get(status, [status])


async def trades(
    conn: AsyncConnection[Any], *, model_id: int, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """The model's orders, newest first, with their fills (if any), costs and latest reason.
    `status`: one status, or `open` for every order that may still fill."""
    statuses = _statuses(status)
    rows = await (await conn.execute(SELECT_ORDERS, (model_id, statuses, statuses, limit, offset))).fetchall()
    return [dict(r) for r in rows]


async def order_of(conn: AsyncConnection[Any], *, model_id: int, order_id: int) -> dict[str, Any] | None:
    """One order of the model with its fills summed, or None."""
    row = await (await conn.execute(SELECT_ORDER, (model_id, order_id))).fetchone()
    return dict(row) if row else None


async def order_events(
    conn: AsyncConnection[Any], *, order_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """Every status change of the given orders, oldest first, by order id."""
    history: dict[int, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    for row in await (await conn.execute(SELECT_ORDER_EVENTS, (order_ids,))).fetchall():
        history[row["order_id"]].append({k: v for k, v in row.items() if k != "order_id"})
    return history


async def open_orders_of(conn: AsyncConnection[Any], *, model_id: int) -> list[dict[str, Any]]:
    """The model's orders that may still fill, as a tool or a page shows them (JSON-ready)."""
    rows = await trades(conn, model_id=model_id, status="open", limit=500)
    return [
        {
            key: (str(value) if isinstance(value, Decimal | datetime) else value)
            for key, value in row.items()
            if value is not None
        }
        for row in rows
    ]


async def count_orders(conn: AsyncConnection[Any], *, model_id: int, status: str | None) -> int:
    """How many orders the model has, optionally only those with one status (or `open`)."""
    statuses = _statuses(status)
    return await _count(conn, COUNT_ORDERS, model_id, statuses, statuses)


@dataclass(frozen=True)
class CostsPaid:
    """What trading cost: commissions, slippage (already in fill prices) and borrow fees."""

    commissions: Decimal
    slippage: Decimal
    borrow_fees: Decimal

    @property
    def charged(self) -> Decimal:
        """Costs taken from cash (slippage is in the prices, not charged separately)."""
        return self.commissions + self.borrow_fees

    @property
    def total(self) -> Decimal:
        """Everything trading cost, slippage included."""
        return self.commissions + self.slippage + self.borrow_fees


async def costs_paid(
    conn: AsyncConnection[Any], *, thread_id: str | None = None, model_id: int | None = None
) -> CostsPaid:
    """Costs of one session (`thread_id`) or of a model across its sessions."""
    sql, key = (SELECT_SESSION_COSTS, thread_id) if thread_id is not None else (SELECT_MODEL_COSTS, model_id)
    row = await (await conn.execute(sql, {"key": key})).fetchone()
    assert row is not None
    return CostsPaid(row["commissions"], row["slippage"], row["borrow_fees"])


def sample_evenly(values: Sequence[T], points: int) -> list[T]:
    """Up to `points` values picked evenly from `values`, first and last included (for sparklines)."""
    if len(values) <= points:
        return list(values)
    step = (len(values) - 1) / (points - 1)
    return [values[round(i * step)] for i in range(points)]
