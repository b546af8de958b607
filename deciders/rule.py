"""The `rule` decider: the moving-average crossover of `tradegraph.crossover`, on bars closed by the clock."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from graph.context import SessionContext, pool_of
from graph.state import Decision, SessionState
from tradegraph.crossover import SLOW, crossover_proposals
from tradegraph.market.prices import history
from tradegraph.terms import Strategy


async def rule_decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """This bar's crossover proposals (replacing the last bar's) and the reasoning per symbol."""
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
        strategy=Strategy.model_validate(state.get("strategy") or {}),
    )
    decision: Decision = {"decider": "rule", "status": "ok", "reason": "; ".join(notes)}
    return {"proposals": Overwrite(proposals), "decision": decision}
