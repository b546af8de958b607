"""The ledger: cash, positions, orders, fills and fees, changed only by SQL functions.

The functions (migrations/0010_order_lifecycle.sql) are the single writers, one atomic call each,
and each is idempotent on its own key, so a replayed node (resume, retry, crash) writes nothing twice:
- `place_order`: an order under its deterministic client order id; an existing id is reported back;
- `fill_order`: a fill per order and bar; it locks and re-checks cash and the position (a buy that
  adds to a long needs the cash, a sell past zero needs shorting), and places or shrinks bracket exits;
- `touch_order`: an evaluation without a fill (compare-and-set on the order's last evaluated bar);
- `close_order`: a cancellation or expiry, with the order's open exits;
- `charge_borrow_fee`: a day's borrow fee on a short, per session, symbol and day.
Cash always equals the initial cash minus buys, plus sells, minus commissions and borrow fees.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from psycopg import AsyncConnection

from tradegraph.database import ASYNC_COMMIT
from tradegraph.matching import RestingOrder
from tradegraph.money import to_money
from tradegraph.orders import session_prefix

PLACE_ORDER = "SELECT * FROM place_order(" + ", ".join(["%s"] * 20) + ")"
PLACE_AND_FILL = f"""
SELECT p.order_id, p.replayed AS order_replayed, COALESCE(f.status, p.status) AS status,
       COALESCE(f.rule, p.rule) AS rule, COALESCE(f.reason, p.reason) AS reason,
       f.fill_quantity, f.price, f.notional, f.commission, f.filled_quantity, f.replayed
FROM place_order({", ".join(["%s"] * 20)}) p
LEFT JOIN LATERAL fill_order(p.order_id, %s, %s, %s, %s, %s, %s, %s) f ON p.status = 'open'
"""
FILL_ORDER = "SELECT * FROM fill_order(%s, %s, %s, %s, %s, %s, %s, %s)"
TOUCH_ORDER = "SELECT touch_order(%s, %s, %s, %s, %s, %s) AS changed"
CLOSE_ORDER = "SELECT * FROM close_order(%s, %s, %s, %s)"
CHARGE_BORROW_FEE = "SELECT charge_borrow_fee(%s, %s, %s, %s, %s, %s, %s, %s, %s) AS charged"
CLOSE_OTHER_STARTS = """
SELECT close_order(id, NULL, 'cancelled', %s) FROM orders
WHERE thread_id = %s AND client_order_id NOT LIKE %s AND status IN ('open', 'partially_filled')
"""
SELECT_OPEN_ORDERS = """
SELECT * FROM orders
WHERE thread_id = %s AND client_order_id LIKE %s AND status IN ('open', 'partially_filled')
ORDER BY id
"""
AHEAD = """
ahead AS (
    SELECT f.side, f.symbol, f.quantity, f.notional, f.commission, f.bar_time
    FROM fills f JOIN orders o ON o.id = f.order_id
    WHERE o.model_id = %(model_id)s AND o.thread_id = %(thread_id)s
      AND o.client_order_id LIKE %(session_prefix)s
      AND (o.bar_time >= %(since)s OR f.bar_time > %(since)s)
), fees_ahead AS (
    SELECT amount FROM borrow_fees
    WHERE model_id = %(model_id)s AND thread_id = %(thread_id)s
      AND fee_key LIKE %(session_prefix)s AND bar_time > %(since)s
)"""
"""This session's own fills and fees after the start of a bar: present only when that bar is being
replayed. A bar starts with the resting orders that filled at it and the fees charged at it; the
orders placed at it, and everything later, are ahead of it."""
_HOLDINGS = f"""
WITH {AHEAD}, undo AS (
    SELECT symbol, sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS quantity
    FROM ahead GROUP BY symbol
)
SELECT c.cash + COALESCE((SELECT sum(CASE side WHEN 'buy' THEN notional ELSE -notional END + commission)
                          FROM ahead), 0)
              + COALESCE((SELECT sum(amount) FROM fees_ahead), 0) AS cash,
       COALESCE(jsonb_object_agg(p.symbol, p.quantity - COALESCE(u.quantity, 0))
                FILTER (WHERE p.quantity - COALESCE(u.quantity, 0) <> 0), '{{}}') AS positions"""
_OF_MODEL = """
FROM cash_accounts c
LEFT JOIN positions p ON p.model_id = c.model_id
LEFT JOIN undo u ON u.symbol = p.symbol
WHERE c.model_id = %(model_id)s GROUP BY c.cash
"""
_FILLS_ON_DAY = """,
       (SELECT count(*) FROM fills WHERE model_id = %(model_id)s AND bar_time::date = %(day)s::date)
       - (SELECT count(*) FROM ahead WHERE bar_time::date = %(day)s::date) AS fills_today,
       (SELECT COALESCE(array_agg(o.id ORDER BY o.id), '{}') FROM orders o
        WHERE o.model_id = %(model_id)s AND o.status IN ('open', 'partially_filled')
          AND NOT (o.thread_id = %(thread_id)s AND o.client_order_id LIKE %(session_prefix)s
                   AND o.bar_time >= %(since)s)) AS open_order_ids"""
SELECT_CASH_AND_POSITIONS = _HOLDINGS + _OF_MODEL
SELECT_BOOK = _HOLDINGS + _FILLS_ON_DAY + _OF_MODEL
"""Cash, positions, the day's fill count and the open orders in one round trip (what a risk check reads)."""
UPSERT_EQUITY = f"""
INSERT INTO equity_points (thread_id, model_id, bar_time, equity, benchmark)
SELECT %(thread_id)s, %(model_id)s, p.bar_time, p.equity, p.benchmark
FROM unnest(%(bar_times)b::timestamp[], %(equities)b::numeric[], %(benchmarks)b::numeric[])
     AS p (bar_time, equity, benchmark)
CROSS JOIN {ASYNC_COMMIT}
ON CONFLICT (thread_id, bar_time) DO UPDATE SET equity = EXCLUDED.equity,
                                               benchmark = EXCLUDED.benchmark
"""


@dataclass(frozen=True)
class BarStart:
    """The ledger as it stood when a session's bar began: its own fills from that bar on left out.

    Nodes that read the ledger ask for it as of their bar, so a replayed step (after a crash,
    a retry or a lost checkpoint) sees what the first attempt saw and decides the same, even when
    the first attempt's fills are already booked.
    """

    thread_id: str
    start_count: int
    clock: datetime

    def params(self) -> dict[str, object]:
        return {
            "thread_id": self.thread_id,
            "session_prefix": session_prefix(self.thread_id, self.start_count) + "%",
            "since": self.clock,
        }


NOW = {"thread_id": "", "session_prefix": "", "since": datetime.max}
"""No bar: the ledger as it stands (nothing left out)."""


@dataclass(frozen=True)
class OrderTicket:
    """An order as it reaches the ledger, with the risk decision already taken."""

    client_order_id: str
    model_id: int
    thread_id: str
    bar_time: datetime
    symbol: str
    side: str
    quantity: Decimal
    status: Literal["open", "rejected"]
    rule: str
    reason: str
    order_type: str = "market"
    time_in_force: str = "day"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    trail_anchor: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    stop_loss_limit: Decimal | None = None
    good_for: date | None = None

    def params(self) -> tuple[object, ...]:
        return (
            self.client_order_id,
            self.model_id,
            self.thread_id,
            self.bar_time,
            self.symbol,
            self.side,
            self.quantity,
            self.order_type,
            self.time_in_force,
            self.limit_price,
            self.stop_price,
            self.trail_percent,
            self.trail_anchor,
            self.take_profit,
            self.stop_loss,
            self.stop_loss_limit,
            self.good_for,
            self.status,
            self.rule,
            self.reason,
        )


@dataclass(frozen=True)
class FillTicket:
    """One fill of an order at a bar: shares, price (slippage included), costs, and why."""

    bar_time: datetime
    quantity: int
    price: Decimal
    commission: Decimal
    slippage: Decimal
    allow_short: bool
    reason: str

    def params(self) -> tuple[object, ...]:
        return (
            self.bar_time,
            self.quantity,
            self.price,
            self.commission,
            self.slippage,
            self.allow_short,
            self.reason,
        )


@dataclass(frozen=True)
class OrderOutcome:
    """What the ledger did with an order at one bar, and whether it had done it before (a replay)."""

    order_id: int
    client_order_id: str
    status: str
    rule: str
    reason: str
    quantity: int
    """Shares this bar filled."""
    price: Decimal | None
    notional: Decimal | None
    commission: Decimal | None
    filled_quantity: int
    replayed: bool

    @property
    def filled(self) -> bool:
        return self.quantity > 0


def _outcome(row: Any, client_order_id: str, order_id: int, replayed: bool) -> OrderOutcome:
    filled = bool(row["fill_quantity"])
    return OrderOutcome(
        order_id=order_id,
        client_order_id=client_order_id,
        status=row["status"],
        rule=row["rule"],
        reason=row["reason"],
        quantity=int(row["fill_quantity"] or 0),
        price=to_money(row["price"]) if filled else None,
        notional=to_money(row["notional"]) if filled else None,
        commission=to_money(row["commission"]) if filled else None,
        filled_quantity=int(row["filled_quantity"] or 0),
        replayed=replayed,
    )


async def place_order(
    conn: AsyncConnection[Any], ticket: OrderTicket, fill: FillTicket | None = None
) -> OrderOutcome:
    """Place one order and, when `fill` is given, fill it at once, in one round trip; idempotent per
    client order id (a replay reports the first outcome)."""
    if fill is None:
        row = await (await conn.execute(PLACE_ORDER, ticket.params())).fetchone()
        assert row is not None
        empty = {"fill_quantity": None, "filled_quantity": 0, **row}
        return _outcome(empty, ticket.client_order_id, row["order_id"], row["replayed"])
    row = await (await conn.execute(PLACE_AND_FILL, (*ticket.params(), *fill.params()))).fetchone()
    assert row is not None
    replayed = bool(row["order_replayed"]) and (row["replayed"] is not False)
    return _outcome(row, ticket.client_order_id, row["order_id"], replayed)


async def fill_order(conn: AsyncConnection[Any], order: RestingOrder, fill: FillTicket) -> OrderOutcome:
    """Fill (part of) a resting order at a bar; idempotent per order and bar."""
    row = await (await conn.execute(FILL_ORDER, (order.id, *fill.params()))).fetchone()
    assert row is not None
    return _outcome(row, order.client_order_id, order.id, row["replayed"])


async def touch_order(
    conn: AsyncConnection[Any],
    order_id: int,
    bar_time: datetime,
    *,
    status: str | None = None,
    reason: str | None = None,
    trail_anchor: Decimal | None = None,
    triggered: bool = False,
) -> bool:
    """Record an evaluation without a fill; False when this bar was evaluated already (a replay)."""
    params = (order_id, bar_time, status, reason, trail_anchor, triggered)
    row = await (await conn.execute(TOUCH_ORDER, params)).fetchone()
    return bool(row and row["changed"])


async def close_order(
    conn: AsyncConnection[Any], order_id: int, *, status: str, reason: str, bar_time: datetime | None
) -> tuple[str, bool] | None:
    """Cancel or expire an open order and its open exits: (its status now, whether this call closed it)."""
    row = await (await conn.execute(CLOSE_ORDER, (order_id, bar_time, status, reason))).fetchone()
    return (row["status"], bool(row["changed"])) if row else None


async def open_orders(conn: AsyncConnection[Any], *, thread_id: str, start_count: int) -> list[RestingOrder]:
    """A session's orders that may still fill, oldest first."""
    params = (thread_id, session_prefix(thread_id, start_count) + "%")
    return [resting(r) for r in await (await conn.execute(SELECT_OPEN_ORDERS, params)).fetchall()]


async def close_other_starts(conn: AsyncConnection[Any], *, thread_id: str, start_count: int) -> None:
    """Cancel the open orders an earlier session on this thread left (it was replaced or failed)."""
    reason = f"a new session (start {start_count}) replaced the one that placed it on this thread"
    await conn.execute(CLOSE_OTHER_STARTS, (reason, thread_id, session_prefix(thread_id, start_count) + "%"))


def resting(row: Any) -> RestingOrder:
    """An orders row as the matching rules see it."""
    return RestingOrder(
        id=row["id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        order_type=row["order_type"],
        time_in_force=row["time_in_force"],
        quantity=int(row["quantity"]),
        filled_quantity=int(row["filled_quantity"]),
        limit_price=row["limit_price"],
        stop_price=row["stop_price"],
        trail_percent=row["trail_percent"],
        trail_anchor=row["trail_anchor"],
        triggered=row["triggered"],
        good_for=row["good_for"],
        leg=row["leg"],
        evaluated_at=row["evaluated_at"],
    )


async def charge_borrow_fee(
    conn: AsyncConnection[Any],
    *,
    fee_key: str,
    model_id: int,
    thread_id: str,
    bar_time: datetime,
    symbol: str,
    quantity: int,
    price: Decimal,
    days: int,
    amount: Decimal,
) -> bool:
    """Charge one borrow fee; False when it was charged before (a replay)."""
    params = (fee_key, model_id, thread_id, bar_time, symbol, quantity, price, days, amount)
    row = await (await conn.execute(CHARGE_BORROW_FEE, params)).fetchone()
    return bool(row and row["charged"])


async def cash_and_positions(
    conn: AsyncConnection[Any], *, model_id: int, as_of: BarStart | None = None
) -> tuple[Decimal, dict[str, int]]:
    """The model's cash and non-zero positions, now or as of a session bar (one round trip)."""
    params = {"model_id": model_id, **(as_of.params() if as_of else NOW)}
    row = await (await conn.execute(SELECT_CASH_AND_POSITIONS, params)).fetchone()
    if row is None:
        raise LookupError(f"model {model_id} has no cash account")
    return row["cash"], dict(sorted(row["positions"].items()))


@dataclass(frozen=True)
class Book:
    """The model's ledger as of a bar: cash, non-zero positions, and fills on the bar's trading day
    across all its sessions."""

    cash: Decimal
    positions: dict[str, int]
    """Non-zero positions; shorts are negative."""
    fills_today: int
    open_order_ids: list[int]
    """The model's orders resting in the book (all its sessions), without this session's from the bar on."""


async def book_at(conn: AsyncConnection[Any], *, model_id: int, day: datetime, as_of: BarStart) -> Book:
    """The ledger as a risk check reads it, as of a session bar (one round trip)."""
    params = {"model_id": model_id, "day": day, **as_of.params()}
    row = await (await conn.execute(SELECT_BOOK, params)).fetchone()
    if row is None:
        raise LookupError(f"model {model_id} has no cash account")
    return Book(
        row["cash"],
        dict(sorted(row["positions"].items())),
        int(row["fills_today"]),
        list(row["open_order_ids"]),
    )


@dataclass(frozen=True)
class EquityPoint:
    """The mark-to-market of one bar: the portfolio's equity and buy-and-hold's, at the bar's close."""

    bar_time: datetime
    equity: Decimal
    benchmark: Decimal


async def record_equity(
    conn: AsyncConnection[Any], *, thread_id: str, model_id: int, points: Sequence[EquityPoint]
) -> None:
    """Store the marks of one or more bars in one statement (replays overwrite with the same values)."""
    params = {
        "thread_id": thread_id,
        "model_id": model_id,
        "bar_times": [p.bar_time for p in points],
        "equities": [p.equity for p in points],
        "benchmarks": [p.benchmark for p in points],
    }
    await conn.execute(UPSERT_EQUITY, params)
