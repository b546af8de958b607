"""decide: ask this session's decider (`rule` or `llm`) what to trade at the current bar."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from graph.context import SessionContext, pool_of
from graph.state import SessionState
from nodes.llm_decider import llm_decide
from nodes.rule_strategy import SLOW, crossover_proposals
from tradegraph.market.prices import history


async def decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Produce proposals (never orders) and a decision record for the bar."""
    if state["decider"] == "llm":
        update = await llm_decide(state, runtime)
    else:
        update = await rule_decide(state, runtime)
    runtime.stream_writer(
        {"type": "decision", "clock": state["clock"], "bar_index": state["bar_index"], **update["decision"]}
    )
    return update


async def rule_decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """The moving-average crossover on bars closed by the clock."""
    pool = await pool_of(runtime.context)
    clock = datetime.fromisoformat(state["clock"])
    closes = {
        symbol: [b.close for b in await history(pool, symbol, clock, state["mode"], SLOW)]
        for symbol in state["symbols"]
    }
    proposals, notes = crossover_proposals(
        bar_index=state["bar_index"],
        closes=closes,
        positions=state["portfolio"]["positions"],
        equity=Decimal(state["portfolio"]["equity"]),
    )
    decision = {"decider": "rule", "status": "ok", "reason": "; ".join(notes)}
    return {"proposals": Overwrite(proposals), "decision": decision}
