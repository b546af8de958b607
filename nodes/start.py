"""start: check the request and the identity against the database, then set the clock to bar 0."""

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from graph.context import SessionContext, bar_start, pool_of, thread_of
from graph.state import Benchmark, SessionState
from tradegraph.accounts import ai_of, get_model, terms_of
from tradegraph.database import Pool
from tradegraph.ledger import close_other_starts
from tradegraph.market.prices import Mode, bar_at
from tradegraph.money import as_text
from tradegraph.session_request import InvalidSession, check_session_request
from tradegraph.sessions import open_session
from tradegraph.valuation import mark

SHARE_STEP = Decimal("0.000001")
"""Buy-and-hold may hold fractional shares, to this precision."""


class IdentityError(PermissionError):
    """The state's identity does not match a model in the database."""


async def start(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Validate, open the session at its first bar, and fix the buy-and-hold benchmark."""
    pool = await pool_of(runtime.context)
    model_id, signature = state.get("model_id"), state.get("signature")
    if not isinstance(model_id, int) or not isinstance(signature, str):
        raise IdentityError("a session needs model_id (integer) and signature (string) in its state")
    request = await check_session_request(pool, state)
    ticks = await request.bar_times(pool)
    if not ticks:
        raise InvalidSession(
            f"no trading days for {', '.join(request.symbols)} in {request.start}..{request.end}"
        )
    clock = ticks[0]
    thread_id = thread_of(runtime)
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=model_id, user_id=None)
        if model is None or model["signature"] != signature:
            raise IdentityError(f"signature {signature!r} does not belong to model {model_id}")
        as_of = bar_start(
            runtime, start_count=state.get("start_count", 0) + 1, clock=clock
        )  # same on a replay
        portfolio = await mark(
            pool, model_id=model_id, clock=clock, mode=request.mode, as_of=as_of, conn=conn
        )
        if thread_id:
            await close_other_starts(conn, thread_id=thread_id, start_count=state.get("start_count", 0) + 1)
            await open_session(
                conn,
                thread_id=thread_id,
                model_id=model_id,
                mode=request.mode,
                start_equity=portfolio["equity"],
            )
    benchmark = await _buy_and_hold(pool, request.symbols, clock, request.mode, Decimal(portfolio["equity"]))
    return {
        "mode": request.mode,
        "symbols": request.symbols,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "decider": request.decider,
        "owner_id": model["user_id"],
        "llm": ai_of(model),
        "strategy": terms_of(model).strategy.as_json(),
        "start_count": state.get("start_count", 0) + 1,
        "clock": clock.isoformat(),
        "bar_index": 0,
        "bars_total": len(ticks),
        "day_open_equity": portfolio["equity"],
        "portfolio": portfolio,
        "benchmark": benchmark,
        "proposals": Overwrite([]),
        "verdicts": [],
        "fills": [],
        "open_orders": 0,
        "messages": Overwrite([]),
        "llm_turns": 0,
        "done": False,
    }


async def _buy_and_hold(
    pool: Pool, symbols: list[str], clock: datetime, mode: Mode, equity: Decimal
) -> Benchmark:
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
