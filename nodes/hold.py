"""hold: carry a `rule` session through a stretch of quiet bars in one graph step.

A bar is quiet when the crossover proposes nothing, none of the session's orders rests in the
book and nothing is sold short: `risk_check` would have nothing to check, `execute` nothing to
book, no fee to charge and no margin to call; the bar is only marked. Most bars of a crossover
session are quiet. `hold` marks up to HOLD_STRETCH of them in one step: for each bar it streams
the decision and equity events that `decide` and `execute` would have, in the same order; it
writes the stretch's equity points in one statement; LangGraph checkpoints the stretch once. It
stops at the first bar where the crossover proposes, and leaves that bar to `decide`.

A replay (resume, retry, a crash mid-stretch) marks the same bars with the same values: the
positions and cash are the state's, the prices are closes up to each bar, and equity points are
upserts.
"""

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from deciders.rule import crossover_at
from graph.context import SessionContext, give_way, ledger_thread_of, pool_of
from graph.events import decision_event, equity_event
from graph.state import SessionState
from nodes.bars import benchmark_value, upcoming_bar
from tradegraph.ledger import EquityPoint, record_equity
from tradegraph.valuation import mark_positions

HOLD_STRETCH = 50
"""Most bars one `hold` step marks: a crash replays at most this many, and the session is
checkpointed at least this often (a quiet stretch longer than this goes on after one more bar)."""


async def hold(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Mark the quiet bars from the current one on, and open the first bar that is not quiet."""
    pool = await pool_of(runtime.context)
    portfolio = state["portfolio"]
    cash, positions = Decimal(portfolio["cash"]), portfolio["positions"]
    clock, index = datetime.fromisoformat(state["clock"]), state["bar_index"]
    update: dict[str, Any] = {}
    points: list[EquityPoint] = []
    for _ in range(HOLD_STRETCH):
        proposals, decision = await crossover_at(
            pool, state, clock=clock, bar_index=index, portfolio=portfolio
        )
        if proposals:
            break  # not quiet: `decide` takes this bar
        runtime.stream_writer(decision_event(clock=clock, bar_index=index, **decision))
        benchmark = await benchmark_value(pool, state, clock)
        points.append(EquityPoint(clock, Decimal(portfolio["equity"]), benchmark))
        runtime.stream_writer(
            equity_event(
                clock=clock,
                bar_index=index,
                bars_total=state["bars_total"],
                equity=portfolio["equity"],
                cash=portfolio["cash"],
                benchmark=benchmark,
            )
        )
        update["decision"] = decision
        upcoming = await upcoming_bar(pool, state, clock, index)
        if upcoming is None:
            update["done"] = True
            break
        if upcoming.date() != clock.date():
            update["day_open_equity"] = portfolio["equity"]
        portfolio = await mark_positions(
            pool, cash=cash, positions=positions, clock=upcoming, mode=state["mode"]
        )
        clock, index = upcoming, index + 1
        update.update(clock=clock.isoformat(), bar_index=index, portfolio=portfolio)
        await give_way(runtime.context)
        await asyncio.sleep(0)  # other sessions run between bars
    if points:
        async with pool.connection() as conn:
            await record_equity(
                conn, thread_id=ledger_thread_of(runtime), model_id=state["model_id"], points=points
            )
        update.update(proposals=Overwrite([]), verdicts=[], fills=[], llm_turns=0)
    return update
