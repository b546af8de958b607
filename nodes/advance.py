"""advance: move the clock to the next bar and clear the per-bar fields, or finish the session."""

from datetime import date, datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from graph.context import SessionContext, pool_of
from graph.state import SessionState
from tradegraph.market.prices import next_time
from tradegraph.portfolio import mark


async def advance(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Next tick, with the portfolio re-marked there; `done` after the last one."""
    pool = await pool_of(runtime.context)
    clock = datetime.fromisoformat(state["clock"])
    upcoming = await next_time(pool, state["symbols"], clock, state["mode"], date.fromisoformat(state["end"]))
    if upcoming is None:
        return {"done": True}
    portfolio = await mark(pool, model_id=state["model_id"], clock=upcoming, mode=state["mode"])
    new_day = upcoming.date() != clock.date()
    return {
        "clock": upcoming.isoformat(),
        "bar_index": state["bar_index"] + 1,
        "day_open_equity": state["portfolio"]["equity"] if new_day else state["day_open_equity"],
        "portfolio": portfolio,
        "proposals": Overwrite([]),
        "verdicts": [],
        "fills": [],
        "messages": Overwrite([]),
        "llm_turns": 0,
    }
