"""Price tools. Both read only bars closed at or before the session clock: no look-ahead."""

from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime

from graph.context import SessionContext
from tools.caller import caller_of
from tradegraph.market.prices import UnknownSymbol, history

MAX_HISTORY = 100


@tool
async def get_price(symbol: str, runtime: ToolRuntime[SessionContext, Any]) -> dict[str, Any]:
    """Latest bar of a symbol at the current session time (close is the price orders fill at)."""
    caller = await caller_of(runtime)
    try:
        bars = await history(caller.pool, symbol.upper(), caller.clock, caller.mode, limit=1)
    except UnknownSymbol as exc:
        return {"error": str(exc)}
    if not bars:
        return {"error": f"no {symbol} price at or before {caller.clock.isoformat()}"}
    return {**bars[-1].as_dict(), "as_of": caller.clock.isoformat()}


@tool
async def get_price_history(
    symbol: str, bars: int, runtime: ToolRuntime[SessionContext, Any]
) -> dict[str, Any]:
    """The most recent `bars` bars (at most 100) of a symbol up to the current session time."""
    caller = await caller_of(runtime)
    limit = max(1, min(int(bars), MAX_HISTORY))
    try:
        found = await history(caller.pool, symbol.upper(), caller.clock, caller.mode, limit)
    except UnknownSymbol as exc:
        return {"error": str(exc)}
    return {
        "symbol": symbol.upper(),
        "as_of": caller.clock.isoformat(),
        "bars": [b.as_dict() for b in found],
    }
