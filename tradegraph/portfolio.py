"""Mark a model's ledger to market at a session clock."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from tradegraph.database import Pool
from tradegraph.ledger import cash_and_positions
from tradegraph.market.prices import Mode, history
from tradegraph.money import as_text, to_money


async def last_close(pool: Pool, symbol: str, clock: datetime, mode: Mode) -> Decimal | None:
    """The latest close at or before the clock (how an open position is marked)."""
    bars = await history(pool, symbol, clock, mode, limit=1)
    return bars[-1].close if bars else None


async def mark(pool: Pool, *, model_id: int, clock: datetime, mode: Mode, conn: Any = None) -> dict[str, Any]:
    """The model's cash, positions and equity at `clock`, as the state's `Portfolio`."""
    if conn is None:
        async with pool.connection() as own:
            cash, positions = await cash_and_positions(own, model_id=model_id)
    else:
        cash, positions = await cash_and_positions(conn, model_id=model_id)
    return await valued(pool, cash=cash, positions=positions, clock=clock, mode=mode)


async def valued(
    pool: Pool, *, cash: Decimal, positions: dict[str, int], clock: datetime, mode: Mode
) -> dict[str, Any]:
    """Cash and positions marked at the clock's last closes."""
    equity = cash
    for symbol, quantity in positions.items():
        price = await last_close(pool, symbol, clock, mode)
        equity += (price or Decimal(0)) * quantity
    return {"cash": as_text(cash), "positions": positions, "equity": as_text(to_money(equity))}
