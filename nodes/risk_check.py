"""risk_check: gather facts at the clock and give every proposal a recorded verdict."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime

from graph.context import SessionContext, bar_start, pool_of
from graph.events import VerdictEvent
from graph.state import SessionState
from tradegraph.accounts import get_model, limits_of, terms_of
from tradegraph.ledger import book_at
from tradegraph.market.prices import bar_at
from tradegraph.orders import Verdict
from tradegraph.risk import RiskFacts, evaluate
from tradegraph.valuation import mark_positions


def verdict_event(verdict: Verdict, clock: str) -> VerdictEvent:
    """The stream event of a verdict."""
    return {"type": "verdict", "clock": clock, **verdict}


async def risk_check(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Check this bar's proposals against the model's current limits and ledger."""
    pool = await pool_of(runtime.context)
    clock = datetime.fromisoformat(state["clock"])
    model_id, mode = state["model_id"], state["mode"]
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=model_id, user_id=None)
        if model is None:
            raise LookupError(f"model {model_id} no longer exists")
        terms = terms_of(model)
        as_of = bar_start(runtime, start_count=state.get("start_count", 1), clock=clock)  # same on a replay
        book = await book_at(conn, model_id=model_id, day=clock, as_of=as_of)
    prices: dict[str, Decimal | None] = {}
    for symbol in state["symbols"]:
        bar = await bar_at(pool, symbol, clock, mode)
        prices[symbol] = bar.close if bar else None
    marked = await mark_positions(pool, cash=book.cash, positions=book.positions, clock=clock, mode=mode)
    facts = RiskFacts(
        limits=limits_of(model),
        cash=book.cash,
        positions=book.positions,
        prices=prices,
        equity=Decimal(marked["equity"]),
        day_open_equity=Decimal(state["day_open_equity"]),
        fills_today=book.fills_today,
        shorting=terms.shorting,
        open_order_ids=book.open_order_ids,
    )
    verdicts = evaluate(list(state.get("proposals", [])), facts)
    for verdict in verdicts:
        runtime.stream_writer(verdict_event(verdict, state["clock"]))
    return {"verdicts": verdicts, "terms": terms.as_json()}
