"""decide: ask this session's decider (`rule` or `llm`) what to trade at the current bar."""

from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from deciders.llm import llm_decide
from deciders.rule import rule_decide
from graph.context import SessionContext, give_way
from graph.events import decision_event
from graph.state import SessionState


async def decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Produce proposals (never orders) and a decision record for the bar."""
    await give_way(runtime.context)
    if state["decider"] == "llm":
        update = await llm_decide(state, runtime)
    else:
        update = await rule_decide(state, runtime)
    clock = datetime.fromisoformat(state["clock"])
    runtime.stream_writer(decision_event(clock=clock, bar_index=state["bar_index"], **update["decision"]))
    return update
