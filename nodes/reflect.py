"""reflect: when the session has ended, write one reflection on it to the bot's memory.

The reflection states the session's dates, symbols, fills and return against buy-and-hold, read
from the ledger, then what worked: the `llm` decider's own model says it in a sentence or two (the
deterministic summary when that call fails), the `rule` decider writes the deterministic summary.
Its key is `reflection:{thread}:{start_count}`, so a replay of this node replaces the reflection
it wrote before instead of adding a second one.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime

from deciders.llm import llm_reflection
from graph.context import SessionContext, ledger_thread_of, pool_of
from graph.state import SessionState
from nodes.bars import benchmark_value
from tradegraph import memory
from tradegraph.database import Pool
from tradegraph.reports import Traded, session_traded


@dataclass(frozen=True)
class Returns:
    """The session's return and buy-and-hold's, as fractions, from its final state."""

    total: float
    buy_and_hold: float


async def reflect(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Write the session's reflection under the bot's memory namespace (nothing without a store)."""
    if runtime.store is None:
        return {}
    pool = await pool_of(runtime.context)
    thread_id = ledger_thread_of(runtime)
    async with pool.connection() as conn:
        traded = await session_traded(conn, thread_id=thread_id)
    performance = await returns_of(state, pool)
    facts = session_facts(state, performance, traded)
    lesson = await llm_reflection(state, runtime, facts) if state["decider"] == "llm" else None
    text = f"{facts} {lesson or what_worked(performance, traded)}"
    namespace = await memory.memory_namespace(
        pool, model_id=state["model_id"], owner_id=state.get("owner_id")
    )
    await memory.remember(
        runtime.store,
        namespace,
        key=f"reflection:{thread_id}:{state.get('start_count', 1)}",
        kind="reflection",
        text=text,
        thread_id=thread_id,
        clock=state["clock"],
    )
    return {"reflection": text}


async def returns_of(state: SessionState, pool: Pool) -> Returns | None:
    """Return and buy-and-hold return at the final mark, from state (the ledger's own figures: the
    portfolio marked at the last bar, the benchmark fixed at the first); None before any bar."""
    start = Decimal(state["benchmark"]["start_equity"]) if "benchmark" in state else Decimal(0)
    if start <= 0 or "portfolio" not in state:
        return None
    held = await benchmark_value(pool, state, datetime.fromisoformat(state["clock"]))
    return Returns(float(Decimal(state["portfolio"]["equity"]) / start - 1), float(held / start - 1))


def session_facts(state: SessionState, performance: Returns | None, traded: list[Traded]) -> str:
    """Dates, symbols, what was filled, and the return against buy-and-hold, in one sentence."""
    fills = sum(t["fills"] for t in traded)
    what = ", ".join(
        f"{'bought' if t['side'] == 'buy' else 'sold'} {t['shares']} {t['symbol']}" for t in traded
    )
    head = (
        f"Session {state['start']} to {state['end']} ({state['mode']}, {state['decider']} decider) on "
        f"{', '.join(state['symbols'])}: {fills} fill{'' if fills == 1 else 's'}"
        + (f" ({what})" if what else "")
    )
    if performance is None:
        return f"{head}; no bar was marked."
    return f"{head}; return {performance.total:+.2%} against buy-and-hold {performance.buy_and_hold:+.2%}."


def what_worked(performance: Returns | None, traded: list[Traded]) -> str:
    """The deterministic lesson: how trading (or holding cash) compared with buy-and-hold."""
    if performance is None:
        return "Nothing to learn: the session marked no bar."
    gap = (performance.total - performance.buy_and_hold) * 100
    if not traded:
        verdict = "beat" if gap >= 0 else "trailed"
        return f"No trades: holding cash {verdict} buy-and-hold by {abs(gap):.2f} points."
    if gap >= 0:
        return f"Trading worked: it beat buy-and-hold by {gap:.2f} points."
    return f"Trading did not pay: it trailed buy-and-hold by {-gap:.2f} points."
