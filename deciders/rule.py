"""The `rule` decider: the moving-average crossover of `tradegraph.crossover`, on bars closed by the clock."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from graph.context import SessionContext, pool_of
from graph.state import Decision, SessionState
from tradegraph.crossover import SLOW, crossover_proposals
from tradegraph.database import Pool
from tradegraph.market.prices import history
from tradegraph.orders import Proposal
from tradegraph.terms import Strategy
from tradegraph.valuation import Portfolio


async def rule_decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """This bar's crossover proposals (replacing the last bar's) and the reasoning per symbol."""
    pool = await pool_of(runtime.context)
    proposals, decision = await crossover_at(
        pool,
        state,
        clock=datetime.fromisoformat(state["clock"]),
        bar_index=state["bar_index"],
        portfolio=state["portfolio"],
    )
    return {"proposals": Overwrite(proposals), "decision": decision}


async def crossover_at(
    pool: Pool, state: SessionState, *, clock: datetime, bar_index: int, portfolio: Portfolio
) -> tuple[list[Proposal], Decision]:
    """The crossover's proposals and reasoning for the session's symbols at a bar, holding `portfolio`."""
    closes = {
        symbol: [b.close for b in await history(pool, symbol, clock, state["mode"], SLOW)]
        for symbol in state["symbols"]
    }
    proposals, notes = crossover_proposals(
        bar_index=bar_index,
        closes=closes,
        positions=portfolio["positions"],
        equity=Decimal(portfolio["equity"]),
        strategy=Strategy.model_validate(state.get("strategy") or {}),
    )
    return proposals, {"decider": "rule", "status": "ok", "reason": "; ".join(notes)}
