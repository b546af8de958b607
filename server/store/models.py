"""SQL behind the trading-model routes that tradegraph.accounts and tradegraph.reports do not cover.

Callers check that the user owns the model first (accounts.get_model with the user's id).
"""

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from tradegraph.market.prices import Mode
from tradegraph.reports import COUNT_SESSION_FILLS

LOCK_MODEL = "SELECT * FROM models WHERE id = %s AND user_id = %s FOR UPDATE"
COUNT_ORDERS = """
SELECT count(*) AS n FROM orders WHERE model_id = %s AND (%s::text IS NULL OR status = %s)
"""
SELECT_LATEST_MARK = """
SELECT p.bar_time, s.mode
FROM equity_points p JOIN sessions s ON s.thread_id = p.thread_id
WHERE p.model_id = %s ORDER BY p.id DESC LIMIT 1
"""
SELECT_SESSION = """
SELECT thread_id, mode, start_equity FROM sessions WHERE thread_id = %s AND model_id = %s
"""
SELECT_SESSIONS_WITH_STATUS = """
SELECT s.thread_id, s.mode, s.created_at, COALESCE(t.status, 'unknown') AS status
FROM sessions s LEFT JOIN threads t ON t.thread_id::text = s.thread_id
WHERE s.model_id = %s ORDER BY s.created_at DESC, s.thread_id DESC
"""


async def lock_model(conn: AsyncConnection[Any], *, model_id: int, user_id: int) -> dict[str, Any] | None:
    """The user's model, row-locked until the transaction ends (so limit merges do not race)."""
    row = await (await conn.execute(LOCK_MODEL, (model_id, user_id))).fetchone()
    return dict(row) if row else None


async def count_orders(conn: AsyncConnection[Any], *, model_id: int, status: str | None) -> int:
    """How many orders the model has, optionally only `filled` or `rejected` ones."""
    row = await (await conn.execute(COUNT_ORDERS, (model_id, status, status))).fetchone()
    return int(row["n"]) if row else 0


async def latest_mark(conn: AsyncConnection[Any], *, model_id: int) -> tuple[datetime, Mode] | None:
    """Bar time and session mode of the model's most recently written equity point, if any."""
    row = await (await conn.execute(SELECT_LATEST_MARK, (model_id,))).fetchone()
    if row is None:
        return None
    return row["bar_time"], "intraday" if row["mode"] == "intraday" else "daily"


async def session_of(conn: AsyncConnection[Any], *, model_id: int, thread_id: str) -> dict[str, Any] | None:
    """One session, only if it belongs to the model."""
    row = await (await conn.execute(SELECT_SESSION, (thread_id, model_id))).fetchone()
    return dict(row) if row else None


async def count_session_fills(conn: AsyncConnection[Any], *, thread_id: str) -> int:
    """Fills of one session."""
    row = await (await conn.execute(COUNT_SESSION_FILLS, (thread_id,))).fetchone()
    return int(row["n"]) if row else 0


async def sessions_with_status(conn: AsyncConnection[Any], *, model_id: int) -> list[dict[str, Any]]:
    """The model's sessions newest first, each with its protocol thread's status or 'unknown'."""
    rows = await (await conn.execute(SELECT_SESSIONS_WITH_STATUS, (model_id,))).fetchall()
    return [dict(r) for r in rows]
