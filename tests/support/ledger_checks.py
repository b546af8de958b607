"""Reconcile a model's cash and positions with its fills, straight from the tables."""

from decimal import Decimal
from typing import Any

from psycopg_pool import AsyncConnectionPool

RECONCILE = """
SELECT m.initial_cash, c.cash,
       COALESCE((SELECT sum(CASE side WHEN 'buy' THEN -notional ELSE notional END - commission)
                 FROM fills WHERE model_id = m.id), 0)
       - COALESCE((SELECT sum(amount) FROM borrow_fees WHERE model_id = m.id), 0) AS cash_flow
FROM models m JOIN cash_accounts c ON c.model_id = m.id WHERE m.id = %s
"""
POSITIONS_FROM_FILLS = """
SELECT symbol, sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS quantity
FROM fills WHERE model_id = %s GROUP BY symbol
"""
POSITIONS = "SELECT symbol, quantity FROM positions WHERE model_id = %s"
DUPLICATE_ORDERS = "SELECT client_order_id FROM orders GROUP BY client_order_id HAVING count(*) > 1"


async def assert_reconciles(pool: AsyncConnectionPool, model_id: int) -> dict[str, Any]:
    """cash == initial - buys + sells - commissions - borrow fees; positions == net filled quantities
    (shorts negative). Returns the figures."""
    async with pool.connection() as conn:
        row = await (await conn.execute(RECONCILE, (model_id,))).fetchone()
        from_fills = {
            r["symbol"]: r["quantity"]
            for r in await (await conn.execute(POSITIONS_FROM_FILLS, (model_id,))).fetchall()
            if r["quantity"]
        }
        held = {
            r["symbol"]: r["quantity"]
            for r in await (await conn.execute(POSITIONS, (model_id,))).fetchall()
            if r["quantity"]
        }
    assert row["cash"] == row["initial_cash"] + row["cash_flow"], row
    assert held == from_fills
    if all(quantity >= 0 for quantity in held.values()):
        assert row["cash"] >= Decimal(0)  # only a cover may leave a debit
    return {"cash": row["cash"], "positions": held}
