"""Moving a session to its next bar: the clock, the day's opening equity, a fresh mark."""

from datetime import date, datetime
from typing import Any

from graph.state import SessionState
from tradegraph.database import Pool
from tradegraph.market.prices import next_time
from tradegraph.portfolio import mark


async def next_bar(pool: Pool, state: SessionState, marked: dict[str, Any]) -> dict[str, Any]:
    """The state update that opens the next bar, or `done` after the last one.

    `marked` is the portfolio just marked at the bar that ended; its equity becomes the day's
    opening equity when the next bar is on a new trading day (for the daily loss limit).
    """
    clock = datetime.fromisoformat(state["clock"])
    upcoming = await next_time(pool, state["symbols"], clock, state["mode"], date.fromisoformat(state["end"]))
    if upcoming is None:
        return {"portfolio": marked, "done": True}
    new_day = upcoming.date() != clock.date()
    return {
        "clock": upcoming.isoformat(),
        "bar_index": state["bar_index"] + 1,
        "day_open_equity": marked["equity"] if new_day else state["day_open_equity"],
        "portfolio": await mark(pool, model_id=state["model_id"], clock=upcoming, mode=state["mode"]),
        "llm_turns": 0,
    }
