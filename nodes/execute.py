"""execute: record every verdict in the ledger (fills for approved ones), exactly once.

Each order's client order id is `{thread}:{session}:{bar}:{slot}`: the thread, the session number
on it, the bar, and the proposal's position in the bar. It is derived from state, not from
checkpoint ids, so a replay of this node (resume, retry, a crash before or after the commit, even
under `durability="exit"`) maps to the same ids and the ledger's unique key turns the second
attempt into a read of the first.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime

from graph.context import SessionContext, pool_of
from graph.state import SessionState, Verdict
from nodes.next_bar import next_bar
from tradegraph.ledger import OrderOutcome, OrderTicket, record_equity, record_order
from tradegraph.money import as_text, to_money
from tradegraph.portfolio import last_close, mark


def client_order_id(thread_id: str, session: int, bar_index: int, slot: int) -> str:
    """The idempotency key of one order."""
    return f"{thread_id}:{session}:{bar_index}:{slot}"


def thread_of(runtime: Runtime[SessionContext]) -> str:
    """The session's thread id (the run id when the graph runs without a checkpointer)."""
    info = runtime.execution_info
    return (info.thread_id or info.run_id or "unthreaded") if info else "unthreaded"


async def execute(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Apply this bar's verdicts to the ledger, then mark the portfolio and the benchmark."""
    pool = await pool_of(runtime.context)
    clock = datetime.fromisoformat(state["clock"])
    thread_id = thread_of(runtime)
    fills = []
    async with pool.connection() as conn:
        for slot, verdict in enumerate(state.get("verdicts", [])):
            ticket = OrderTicket(
                client_order_id=client_order_id(thread_id, state.get("session", 1), state["bar_index"], slot),
                model_id=state["model_id"],
                thread_id=thread_id,
                bar_time=clock,
                symbol=verdict["symbol"],
                side=verdict["side"],
                quantity=_as_decimal(verdict["quantity"]),
                price=Decimal(verdict["price"]) if verdict["price"] else None,
                approved=verdict["status"] == "approved",
                rule=verdict["rule"],
                reason=verdict["reason"],
            )
            if verdict["rule"] == "human_approval":  # the reviewer's answer is a verdict too
                runtime.stream_writer({"type": "verdict", "clock": state["clock"], **verdict})
            fill = _fill_record(verdict, await record_order(conn, ticket))
            fills.append(fill)
            runtime.stream_writer({"type": "fill", "clock": state["clock"], **fill})
        portfolio = await mark(pool, model_id=state["model_id"], clock=clock, mode=state["mode"], conn=conn)
        benchmark = await benchmark_value(pool, state, clock)
        await record_equity(
            conn,
            thread_id=thread_id,
            model_id=state["model_id"],
            bar_time=clock,
            equity=Decimal(str(portfolio["equity"])),
            benchmark=benchmark,
        )
    runtime.stream_writer(
        {
            "type": "equity",
            "clock": state["clock"],
            "bar_index": state["bar_index"],
            "bars_total": state["bars_total"],
            "equity": portfolio["equity"],
            "cash": portfolio["cash"],
            "benchmark": as_text(benchmark),
        }
    )
    return {"fills": fills, **await next_bar(pool, state, portfolio)}


async def benchmark_value(pool: Any, state: SessionState, clock: datetime) -> Decimal:
    """Buy-and-hold value at the clock."""
    benchmark = state["benchmark"]
    value = Decimal(benchmark["cash"])
    for symbol, shares in benchmark["shares"].items():
        price = await last_close(pool, symbol, clock, state["mode"])
        value += Decimal(shares) * (price or Decimal(0))
    return to_money(value)


def _as_decimal(quantity: Any) -> Decimal:
    try:
        return Decimal(str(quantity)) if Decimal(str(quantity)).is_finite() else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


def _fill_record(verdict: Verdict, outcome: OrderOutcome) -> dict[str, Any]:
    return {
        "client_order_id": outcome.client_order_id,
        "symbol": verdict["symbol"],
        "side": verdict["side"],
        "quantity": outcome.quantity,
        "price": as_text(outcome.price) if outcome.price is not None else None,
        "notional": as_text(outcome.notional) if outcome.notional is not None else None,
        "status": "filled" if outcome.filled else "rejected",
        "rule": outcome.rule,
        "reason": outcome.reason,
        "replayed": outcome.replayed,
    }
