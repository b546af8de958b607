"""The ledger: cash, positions, orders and fills, changed only by the `record_order` SQL function.

`record_order` (migrations/0005_record_order.sql) is the single writer, one atomic call per order.
It inserts the order under its deterministic client order id first; if that id exists, the order
was already recorded (a replayed node) and nothing else is written. Cash and position rows are
locked and re-checked, and the table CHECKs (cash >= 0, quantity >= 0) make a negative balance
impossible even if two sessions of one model race.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from tradegraph.money import to_money

RECORD_ORDER = "SELECT * FROM record_order(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
SELECT_CASH_AND_POSITIONS = """
SELECT c.cash,
       COALESCE(jsonb_object_agg(p.symbol, p.quantity) FILTER (WHERE p.quantity > 0), '{}') AS positions
FROM cash_accounts c LEFT JOIN positions p ON p.model_id = c.model_id
WHERE c.model_id = %s GROUP BY c.cash
"""
COUNT_FILLS_ON_DAY = """
SELECT count(*) AS n FROM fills WHERE model_id = %s AND bar_time::date = %s::date
"""
UPSERT_EQUITY = """
INSERT INTO equity_points (thread_id, model_id, bar_time, equity, benchmark)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (thread_id, bar_time) DO UPDATE SET equity = EXCLUDED.equity,
                                               benchmark = EXCLUDED.benchmark
"""


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
    price: Decimal | None
    approved: bool
    rule: str
    reason: str


@dataclass(frozen=True)
class OrderOutcome:
    """What the ledger did: filled (with price and notional) or rejected, and whether it was new."""

    client_order_id: str
    filled: bool
    rule: str
    reason: str
    quantity: int
    price: Decimal | None
    notional: Decimal | None
    replayed: bool


async def record_order(conn: AsyncConnection[Any], ticket: OrderTicket) -> OrderOutcome:
    """Record one order, and fill it if approved, atomically; idempotent per client order id."""
    params = (
        ticket.client_order_id,
        ticket.model_id,
        ticket.thread_id,
        ticket.bar_time,
        ticket.symbol,
        ticket.side,
        ticket.quantity,
        ticket.price,
        ticket.approved,
        ticket.rule,
        ticket.reason,
    )
    row = await (await conn.execute(RECORD_ORDER, params)).fetchone()
    assert row is not None
    filled = row["status"] == "filled"
    return OrderOutcome(
        client_order_id=ticket.client_order_id,
        filled=filled,
        rule=row["rule"],
        reason=row["reason"],
        quantity=int(row["fill_quantity"] or 0),
        price=to_money(row["price"]) if filled else None,
        notional=to_money(row["notional"]) if filled else None,
        replayed=row["replayed"],
    )


async def cash_and_positions(conn: AsyncConnection[Any], *, model_id: int) -> tuple[Decimal, dict[str, int]]:
    """The model's cash and non-zero positions right now (one round trip)."""
    row = await (await conn.execute(SELECT_CASH_AND_POSITIONS, (model_id,))).fetchone()
    if row is None:
        raise LookupError(f"model {model_id} has no cash account")
    return row["cash"], dict(sorted(row["positions"].items()))


async def fills_on_day(conn: AsyncConnection[Any], *, model_id: int, day: datetime) -> int:
    """Fills the model has had on the trading day of `day`, across all its sessions."""
    row = await (await conn.execute(COUNT_FILLS_ON_DAY, (model_id, day))).fetchone()
    return int(row["n"]) if row else 0


async def record_equity(
    conn: AsyncConnection[Any],
    *,
    thread_id: str,
    model_id: int,
    bar_time: datetime,
    equity: Decimal,
    benchmark: Decimal,
) -> None:
    """Store the mark-to-market of one bar (replays overwrite with the same values)."""
    await conn.execute(UPSERT_EQUITY, (thread_id, model_id, bar_time, equity, benchmark))
