"""The ledger: cash, positions, orders and fills, changed only inside one transaction per order.

`record_order` is the single writer. It inserts the order under its deterministic client order id
first; if that id exists, the order was already recorded (a replayed node) and nothing else is
written. Cash and position rows are locked and re-checked, and the table CHECKs (cash >= 0,
quantity >= 0) make a negative balance impossible even if two sessions of one model race.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from tradegraph.money import to_money

INSERT_ORDER = """
INSERT INTO orders (client_order_id, model_id, thread_id, bar_time, symbol, side, quantity,
                    status, rule, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (client_order_id) DO NOTHING
RETURNING id
"""
SELECT_ORDER = """
SELECT o.id, o.status, o.rule, o.reason, f.quantity AS fill_quantity, f.price, f.notional
FROM orders o LEFT JOIN fills f ON f.order_id = o.id
WHERE o.client_order_id = %s
"""
LOCK_CASH = "SELECT cash FROM cash_accounts WHERE model_id = %s FOR UPDATE"
LOCK_POSITION = "SELECT quantity FROM positions WHERE model_id = %s AND symbol = %s FOR UPDATE"
UPDATE_CASH = "UPDATE cash_accounts SET cash = cash + %s WHERE model_id = %s"
ADD_POSITION = """
INSERT INTO positions (model_id, symbol, quantity) VALUES (%s, %s, %s)
ON CONFLICT (model_id, symbol) DO UPDATE SET quantity = positions.quantity + EXCLUDED.quantity
"""
REDUCE_POSITION = "UPDATE positions SET quantity = quantity - %s WHERE model_id = %s AND symbol = %s"
INSERT_FILL = """
INSERT INTO fills (order_id, model_id, symbol, side, quantity, price, notional, bar_time)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
MARK_REJECTED = "UPDATE orders SET status = 'rejected', rule = %s, reason = %s WHERE id = %s"
SELECT_CASH = "SELECT cash FROM cash_accounts WHERE model_id = %s"
SELECT_POSITIONS = """
SELECT symbol, quantity FROM positions WHERE model_id = %s AND quantity > 0 ORDER BY symbol
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
    """Record one order, and fill it if approved, in a single transaction; idempotent per id."""
    async with conn.transaction():
        status = "filled" if ticket.approved else "rejected"
        row = await (
            await conn.execute(
                INSERT_ORDER,
                (
                    ticket.client_order_id,
                    ticket.model_id,
                    ticket.thread_id,
                    ticket.bar_time,
                    ticket.symbol,
                    ticket.side,
                    ticket.quantity,
                    status,
                    ticket.rule,
                    ticket.reason,
                ),
            )
        ).fetchone()
        if row is None:
            return await _existing(conn, ticket.client_order_id)
        if not ticket.approved:
            return _outcome(ticket, filled=False, rule=ticket.rule, reason=ticket.reason)
        shortfall = await _apply_fill(conn, ticket, order_id=row["id"])
        if shortfall:
            await conn.execute(MARK_REJECTED, ("execution", shortfall, row["id"]))
            return _outcome(ticket, filled=False, rule="execution", reason=shortfall)
    return _outcome(ticket, filled=True, rule=ticket.rule, reason=ticket.reason)


async def _apply_fill(conn: AsyncConnection[Any], ticket: OrderTicket, *, order_id: int) -> str:
    """Move cash and shares; returns why it could not (empty string when filled)."""
    assert ticket.price is not None
    quantity = int(ticket.quantity)
    notional = to_money(ticket.price * quantity)
    cash_row = await (await conn.execute(LOCK_CASH, (ticket.model_id,))).fetchone()
    held_row = await (await conn.execute(LOCK_POSITION, (ticket.model_id, ticket.symbol))).fetchone()
    cash = cash_row["cash"] if cash_row else Decimal(0)
    held = held_row["quantity"] if held_row else 0
    if ticket.side == "buy" and notional > cash:
        return f"cash {cash} no longer covers {notional} at execution"
    if ticket.side == "sell" and quantity > held:
        return f"only {held} {ticket.symbol} held at execution, cannot sell {quantity}"
    if ticket.side == "buy":
        await conn.execute(UPDATE_CASH, (-notional, ticket.model_id))
        await conn.execute(ADD_POSITION, (ticket.model_id, ticket.symbol, quantity))
    else:
        await conn.execute(UPDATE_CASH, (notional, ticket.model_id))
        await conn.execute(REDUCE_POSITION, (quantity, ticket.model_id, ticket.symbol))
    await conn.execute(
        INSERT_FILL,
        (
            order_id,
            ticket.model_id,
            ticket.symbol,
            ticket.side,
            quantity,
            ticket.price,
            notional,
            ticket.bar_time,
        ),
    )
    return ""


def _outcome(ticket: OrderTicket, *, filled: bool, rule: str, reason: str) -> OrderOutcome:
    quantity = int(ticket.quantity) if ticket.quantity == int(ticket.quantity) else 0
    notional = to_money(ticket.price * quantity) if filled and ticket.price else None
    return OrderOutcome(
        ticket.client_order_id,
        filled,
        rule,
        reason,
        quantity,
        ticket.price if filled else None,
        notional,
        replayed=False,
    )


async def _existing(conn: AsyncConnection[Any], client_order_id: str) -> OrderOutcome:
    row = await (await conn.execute(SELECT_ORDER, (client_order_id,))).fetchone()
    assert row is not None
    return OrderOutcome(
        client_order_id,
        row["status"] == "filled",
        row["rule"],
        row["reason"],
        row["fill_quantity"] or 0,
        row["price"],
        row["notional"],
        replayed=True,
    )


async def cash_and_positions(conn: AsyncConnection[Any], *, model_id: int) -> tuple[Decimal, dict[str, int]]:
    """The model's cash and non-zero positions right now."""
    row = await (await conn.execute(SELECT_CASH, (model_id,))).fetchone()
    if row is None:
        raise LookupError(f"model {model_id} has no cash account")
    rows = await (await conn.execute(SELECT_POSITIONS, (model_id,))).fetchall()
    return row["cash"], {r["symbol"]: r["quantity"] for r in rows}


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
