"""Conditional edges of the session graph.

They are `async def` though they never await: LangGraph runs a plain function given as an edge in
a thread pool on every step of an async run (`coerce_to_runnable` wraps it in `run_in_executor`),
a thread hop per step; a coroutine function runs on the event loop.
"""

from typing import Literal

from langchain_core.messages import AIMessage

from graph.state import MAX_LLM_TURNS, SessionState


async def after_decide(state: SessionState) -> Literal["tools", "risk_check"]:
    """Run the LLM's tool calls while the bar's loop has turns left; otherwise check the proposals."""
    messages = state.get("messages", [])
    last = messages[-1] if messages else None
    wants_tools = isinstance(last, AIMessage) and bool(last.tool_calls)
    if state["decider"] == "llm" and wants_tools and state["llm_turns"] < MAX_LLM_TURNS:
        return "tools"
    return "risk_check"


async def after_risk_check(state: SessionState) -> Literal["approve", "execute"]:
    """Pause for a person only when some order needs approval."""
    if any(v["status"] == "needs_approval" for v in state["verdicts"]):
        return "approve"
    return "execute"


async def after_execute(state: SessionState) -> Literal["hold", "decide", "reflect"]:
    """Loop over bars until the last one, then reflect on the session; a `rule` session with an
    empty book may hold through quiet bars in one step."""
    if state.get("done"):
        return "reflect"
    return "hold" if may_hold(state) else "decide"


async def after_hold(state: SessionState) -> Literal["decide", "reflect"]:
    """After a quiet stretch: the bar that ended it goes to `decide`, unless the session is over."""
    return "reflect" if state.get("done") else "decide"


def may_hold(state: SessionState) -> bool:
    """Whether the next bars can be quiet: the `rule` decider, nothing resting, nothing short (no
    order to judge, fee to charge or margin to call; only the crossover can make a bar busy)."""
    return (
        state["decider"] == "rule"
        and not state.get("open_orders")
        and all(quantity >= 0 for quantity in state["portfolio"]["positions"].values())
    )
