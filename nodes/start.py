"""start: check the request and the identity against the database, then set the clock to bar 0."""

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from graph.context import SessionContext, pool_of
from graph.state import SessionState
from tradegraph.accounts import get_model
from tradegraph.market.prices import bar_at, session_times
from tradegraph.money import as_text
from tradegraph.portfolio import mark
from tradegraph.session_request import InvalidSession, check_session_request

UPSERT_SESSION = """
INSERT INTO sessions (thread_id, model_id, mode, start_equity) VALUES (%s, %s, %s, %s)
ON CONFLICT (thread_id) DO UPDATE SET mode = EXCLUDED.mode, start_equity = EXCLUDED.start_equity
WHERE sessions.model_id = EXCLUDED.model_id
"""
SHARE_STEP = Decimal("0.000001")


class IdentityError(PermissionError):
    """The state's identity does not match a model in the database."""


async def start(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Validate, open the session at its first bar, and fix the buy-and-hold benchmark."""
    pool = await pool_of(runtime.context)
    model_id, signature = state.get("model_id"), state.get("signature")
    if not isinstance(model_id, int) or not isinstance(signature, str):
        raise IdentityError("a session needs model_id (integer) and signature (string) in its state")
    request = await check_session_request(pool, dict(state))
    ticks = await session_times(pool, request.symbols, request.start, request.end, request.mode)
    if not ticks:
        raise InvalidSession(
            f"no trading days for {', '.join(request.symbols)} in {request.start}..{request.end}"
        )
    clock = ticks[0]
    thread_id = runtime.execution_info.thread_id if runtime.execution_info else None
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=model_id, user_id=None)
        if model is None or model["signature"] != signature:
            raise IdentityError(f"signature {signature!r} does not belong to model {model_id}")
        portfolio = await mark(pool, model_id=model_id, clock=clock, mode=request.mode, conn=conn)
        if thread_id:
            await conn.execute(UPSERT_SESSION, (thread_id, model_id, request.mode, portfolio["equity"]))
    benchmark = await _buy_and_hold(
        pool, request.symbols, clock, request.mode, Decimal(str(portfolio["equity"]))
    )
    return {
        "mode": request.mode,
        "symbols": request.symbols,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "decider": request.decider,
        "session": state.get("session", 0) + 1,
        "clock": clock.isoformat(),
        "bar_index": 0,
        "bars_total": len(ticks),
        "day_open_equity": portfolio["equity"],
        "portfolio": portfolio,
        "benchmark": benchmark,
        "proposals": Overwrite([]),
        "verdicts": [],
        "fills": [],
        "messages": Overwrite([]),
        "llm_turns": 0,
        "done": False,
    }


async def _buy_and_hold(
    pool: Any, symbols: list[str], clock: datetime, mode: Any, equity: Decimal
) -> dict[str, Any]:
    """Split the starting equity equally across symbols at the first bar's closes."""
    budget = equity / len(symbols)
    shares: dict[str, str] = {}
    cash = equity
    for symbol in symbols:
        bar = await bar_at(pool, symbol, clock, mode)
        if bar is None:
            continue
        count = (budget / bar.close).quantize(SHARE_STEP, ROUND_DOWN)
        shares[symbol] = str(count)
        cash -= count * bar.close
    return {"start_equity": as_text(equity), "shares": shares, "cash": as_text(cash)}
