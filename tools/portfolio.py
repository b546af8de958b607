"""The calling model's own portfolio; which model is decided by graph state, not by the LLM."""

from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime

from graph.context import SessionContext
from tools.caller import caller_of
from tradegraph.valuation import mark


@tool
async def get_portfolio(runtime: ToolRuntime[SessionContext, Any]) -> dict[str, Any]:
    """Your cash, positions and equity marked at the current session time."""
    caller = await caller_of(runtime)
    portfolio = await mark(caller.pool, model_id=caller.model_id, clock=caller.clock, mode=caller.mode)
    return {"signature": caller.signature, "as_of": caller.clock.isoformat(), **portfolio}
