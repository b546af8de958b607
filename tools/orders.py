"""buy and sell only *propose* orders; `risk_check` decides and `execute` fills.

The proposal is written into graph state with a `Command`, so the account it trades for is the
session's own model: the LLM cannot name another account because no such argument exists.
"""

from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import Command

from graph.context import SessionContext
from tradegraph.orders import Proposal


def _propose(
    side: str, symbol: str, quantity: int | float, runtime: ToolRuntime[SessionContext, Any]
) -> Command[Any]:
    state = runtime.state
    proposal: Proposal = {
        "id": f"{state['bar_index']}:{runtime.tool_call_id}",
        "symbol": symbol.upper(),
        "side": side,
        "quantity": quantity,
        "source": "llm",
        "note": f"tool call {runtime.tool_call_id}",
    }
    text = (
        f"Proposed {side} {quantity} {symbol.upper()} for {state['signature']}. "
        "risk_check reviews it after your turn; the outcome appears in the session."
    )
    return Command(
        update={
            "proposals": [proposal],
            "messages": [ToolMessage(text, tool_call_id=runtime.tool_call_id, name=side)],
        }
    )


@tool
def buy(symbol: str, quantity: int | float, runtime: ToolRuntime[SessionContext, Any]) -> Command[Any]:
    """Propose buying `quantity` whole shares of `symbol` at the current bar's close."""
    return _propose("buy", symbol, quantity, runtime)


@tool
def sell(symbol: str, quantity: int | float, runtime: ToolRuntime[SessionContext, Any]) -> Command[Any]:
    """Propose selling `quantity` whole shares of `symbol` you hold, at the current bar's close."""
    return _propose("sell", symbol, quantity, runtime)
