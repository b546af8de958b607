"""The sessions repository: one row per trading session (a LangGraph thread), with its model and start.

A session row is written when the `start` node opens the session, and read by reports and the
API. Only this module touches the `sessions` table directly; reports join it read-only.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from psycopg import AsyncConnection
from typing_extensions import TypedDict

from tradegraph.market.prices import Mode

UPSERT_SESSION = """
INSERT INTO sessions (thread_id, model_id, mode, start_equity) VALUES (%s, %s, %s, %s)
ON CONFLICT (thread_id) DO UPDATE SET mode = EXCLUDED.mode, start_equity = EXCLUDED.start_equity
WHERE sessions.model_id = EXCLUDED.model_id
"""
SELECT_SESSION = """
SELECT thread_id, model_id, mode, start_equity, created_at FROM sessions
WHERE thread_id = %s AND (%s::bigint IS NULL OR model_id = %s)
"""
SELECT_MODEL_SESSIONS = """
SELECT thread_id, model_id, mode, start_equity, created_at FROM sessions
WHERE model_id = %s ORDER BY created_at DESC, thread_id DESC
"""


class SessionRow(TypedDict):
    """A session: its thread, model, bar mode and the equity it started with."""

    thread_id: str
    model_id: int
    mode: Mode | None
    start_equity: Decimal | None
    created_at: datetime


async def open_session(
    conn: AsyncConnection[Any], *, thread_id: str, model_id: int, mode: Mode, start_equity: str
) -> None:
    """Record that a session started (a restart on the same thread replaces mode and start equity)."""
    await conn.execute(UPSERT_SESSION, (thread_id, model_id, mode, start_equity))


async def get_session(
    conn: AsyncConnection[Any], *, thread_id: str, model_id: int | None = None
) -> SessionRow | None:
    """One session; with `model_id`, only if it belongs to that model."""
    row = await (await conn.execute(SELECT_SESSION, (thread_id, model_id, model_id))).fetchone()
    return cast(SessionRow, dict(row)) if row else None


async def model_sessions(conn: AsyncConnection[Any], *, model_id: int) -> list[SessionRow]:
    """The model's sessions, newest first."""
    rows = await (await conn.execute(SELECT_MODEL_SESSIONS, (model_id,))).fetchall()
    return [cast(SessionRow, dict(r)) for r in rows]
