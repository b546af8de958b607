"""The calling model's own portfolio; which model is decided by graph state, not by the LLM."""

from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime

from graph.context import SessionContext
from tools.session import session_of
from tradegraph.portfolio import mark


@tool
async def get_portfolio(runtime: ToolRuntime[SessionContext, Any]) -> dict[str, Any]:
    """Your cash, positions and equity marked at the current session time."""
    session = await session_of(runtime)
    portfolio = await mark(session.pool, model_id=session.model_id, clock=session.clock, mode=session.mode)
    return {"signature": session.signature, "as_of": session.clock.isoformat(), **portfolio}
