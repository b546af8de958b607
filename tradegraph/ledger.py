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
AHEAD = """
ahead AS (
    SELECT f.side, f.symbol, f.quantity, f.notional, f.bar_time
    FROM fills f JOIN orders o ON o.id = f.order_id
    WHERE o.model_id = %(model_id)s AND o.thread_id = %(thread_id)s
      AND o.client_order_id LIKE %(session_prefix)s AND o.bar_time >= %(since)s
)"""
"""This session's own fills at or after a bar: present only when that bar is being replayed."""
_HOLDINGS = f"""
WITH {AHEAD}, undo AS (
    SELECT symbol, sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS quantity
    FROM ahead GROUP BY symbol
)
SELECT c.cash + COALESCE((SELECT sum(CASE side WHEN 'buy' THEN notional ELSE -notional END) FROM ahead), 0)
           AS cash,
       COALESCE(jsonb_object_agg(p.symbol, p.quantity - COALESCE(u.quantity, 0))
                FILTER (WHERE p.quantity - COALESCE(u.quantity, 0) > 0), '{{}}') AS positions"""
_OF_MODEL = """
FROM cash_accounts c
LEFT JOIN positions p ON p.model_id = c.model_id
LEFT JOIN undo u ON u.symbol = p.symbol
WHERE c.model_id = %(model_id)s GROUP BY c.cash
"""
_FILLS_ON_DAY = """,
       (SELECT count(*) FROM fills WHERE model_id = %(model_id)s AND bar_time::date = %(day)s::date)
       - (SELECT count(*) FROM ahead WHERE bar_time::date = %(day)s::date) AS fills_today"""
SELECT_CASH_AND_POSITIONS = _HOLDINGS + _OF_MODEL
SELECT_BOOK = _HOLDINGS + _FILLS_ON_DAY + _OF_MODEL
"""Cash, positions and the day's fill count in one round trip (what a risk check reads)."""
UPSERT_EQUITY = """
INSERT INTO equity_points (thread_id, model_id, bar_time, equity, benchmark)
VALUES (%s, %s, %s, %s, %s)
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
            "session_prefix": f"{self.thread_id}:{self.start_count}:%",
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
    fills_today: int


async def book_at(conn: AsyncConnection[Any], *, model_id: int, day: datetime, as_of: BarStart) -> Book:
    """The ledger as a risk check reads it, as of a session bar (one round trip)."""
    params = {"model_id": model_id, "day": day, **as_of.params()}
    row = await (await conn.execute(SELECT_BOOK, params)).fetchone()
    if row is None:
        raise LookupError(f"model {model_id} has no cash account")
    return Book(row["cash"], dict(sorted(row["positions"].items())), int(row["fills_today"]))


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
