"""Who is calling a tool: the bot's identity, clock and mode, read from graph state (never process config)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph.prebuilt import ToolRuntime

from graph.context import SessionContext, pool_of
from tradegraph.database import Pool
from tradegraph.market.prices import Mode


@dataclass(frozen=True)
class ToolCaller:
    """Identity, clock and database of the session a tool call belongs to."""

    model_id: int
    signature: str
    clock: datetime
    mode: Mode
    symbols: list[str]
    bar_index: int
    pool: Pool


async def caller_of(runtime: ToolRuntime[SessionContext, Any]) -> ToolCaller:
    """The calling session, from the injected graph state."""
    state = runtime.state
    return ToolCaller(
        model_id=state["model_id"],
        signature=state["signature"],
        clock=datetime.fromisoformat(state["clock"]),
        mode=state["mode"],
        symbols=list(state["symbols"]),
        bar_index=state["bar_index"],
        pool=await pool_of(runtime.context),
    )
