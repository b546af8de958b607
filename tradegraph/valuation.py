"""Mark to market: the one place where holdings are valued at a session clock.

A holding is worth its quantity times the last close at or before the clock (no look-ahead).
The model's portfolio, its API view and the buy-and-hold benchmark are all valued here.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from typing_extensions import TypedDict

from tradegraph.database import Pool
from tradegraph.ledger import BarStart, cash_and_positions
from tradegraph.market.prices import Mode, history
from tradegraph.money import as_text, to_money


class Portfolio(TypedDict):
    """The ledger marked at the session clock, as graph state keeps it (money as decimal strings)."""

    cash: str
    positions: dict[str, int]
    equity: str


@dataclass(frozen=True)
class Holding:
    """One position and what it is worth; price and value are None when it cannot be priced."""

    symbol: str
    quantity: Decimal
    price: Decimal | None
    value: Decimal | None


@dataclass(frozen=True)
class Valuation:
    """Cash, holdings and their sum, at one clock."""

    cash: Decimal
    holdings: list[Holding]
    equity: Decimal


async def last_close(pool: Pool, symbol: str, clock: datetime, mode: Mode) -> Decimal | None:
    """The latest close at or before the clock (how an open position is marked)."""
    bars = await history(pool, symbol, clock, mode, limit=1)
    return bars[-1].close if bars else None


async def value_holdings(
    pool: Pool, *, cash: Decimal, quantities: Mapping[str, Decimal | int], clock: datetime | None, mode: Mode
) -> Valuation:
    """Value each holding at the clock's last close; without a clock nothing is priced.

    Values are summed unrounded and the equity is rounded once to ledger precision, so fractional
    benchmark shares and whole ledger shares are treated alike.
    """
    holdings: list[Holding] = []
    total = cash
    for symbol, quantity in quantities.items():
        price = await last_close(pool, symbol, clock, mode) if clock is not None else None
        value = price * Decimal(quantity) if price is not None else None
        holdings.append(Holding(symbol, Decimal(quantity), price, value))
        total += value or Decimal(0)
    return Valuation(cash=cash, holdings=holdings, equity=to_money(total))


async def mark(
    pool: Pool,
    *,
    model_id: int,
    clock: datetime,
    mode: Mode,
    as_of: BarStart | None = None,
    conn: AsyncConnection[DictRow] | None = None,
) -> Portfolio:
    """The model's ledger cash and positions (as of a session bar) marked at `clock`."""
    if conn is None:
        async with pool.connection() as own:
            cash, positions = await cash_and_positions(own, model_id=model_id, as_of=as_of)
    else:
        cash, positions = await cash_and_positions(conn, model_id=model_id, as_of=as_of)
    return await mark_positions(pool, cash=cash, positions=positions, clock=clock, mode=mode)


async def mark_positions(
    pool: Pool, *, cash: Decimal, positions: dict[str, int], clock: datetime, mode: Mode
) -> Portfolio:
    """Given cash and positions marked at the clock, as graph state keeps them."""
    valuation = await value_holdings(pool, cash=cash, quantities=positions, clock=clock, mode=mode)
    return {"cash": as_text(cash), "positions": positions, "equity": as_text(valuation.equity)}
