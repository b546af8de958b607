"""Price tools. Both read only bars closed at or before the session clock: no look-ahead."""

from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime

from graph.context import SessionContext
from tools.session import session_of
from tradegraph.market.prices import UnknownSymbol, history

MAX_HISTORY = 100


@tool
async def get_price(symbol: str, runtime: ToolRuntime[SessionContext, Any]) -> dict[str, Any]:
    """Latest bar of a symbol at the current session time (close is the price orders fill at)."""
    session = await session_of(runtime)
    try:
        bars = await history(session.pool, symbol.upper(), session.clock, session.mode, limit=1)
    except UnknownSymbol as exc:
        return {"error": str(exc)}
    if not bars:
        return {"error": f"no {symbol} price at or before {session.clock.isoformat()}"}
    return {**bars[-1].as_dict(), "as_of": session.clock.isoformat()}


@tool
async def get_price_history(
    symbol: str, bars: int, runtime: ToolRuntime[SessionContext, Any]
) -> dict[str, Any]:
    """The most recent `bars` bars (at most 100) of a symbol up to the current session time."""
    session = await session_of(runtime)
    limit = max(1, min(int(bars), MAX_HISTORY))
    try:
        found = await history(session.pool, symbol.upper(), session.clock, session.mode, limit)
    except UnknownSymbol as exc:
        return {"error": str(exc)}
    return {
        "symbol": symbol.upper(),
        "as_of": session.clock.isoformat(),
        "bars": [b.as_dict() for b in found],
    }
