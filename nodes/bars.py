"""The session's bar clock, shared by the nodes that end a bar (`execute`, `hold`) and `reflect`."""

from datetime import date, datetime
from decimal import Decimal

from graph.state import SessionState
from tradegraph.database import Pool
from tradegraph.market.prices import next_time
from tradegraph.valuation import value_holdings


async def upcoming_bar(pool: Pool, state: SessionState, clock: datetime, bar_index: int) -> datetime | None:
    """The bar after the one at `clock`, or None when that was the session's last bar."""
    if bar_index + 1 >= state["bars_total"]:
        return None  # a session trades the bars known when it started (its run's step budget)
    return await next_time(pool, state["symbols"], clock, state["mode"], date.fromisoformat(state["end"]))


async def benchmark_value(pool: Pool, state: SessionState, clock: datetime) -> Decimal:
    """Buy-and-hold value at the clock."""
    benchmark = state["benchmark"]
    shares = {symbol: Decimal(count) for symbol, count in benchmark["shares"].items()}
    valued = await value_holdings(
        pool, cash=Decimal(benchmark["cash"]), quantities=shares, clock=clock, mode=state["mode"]
    )
    return valued.equity
