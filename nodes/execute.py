"""execute: record every verdict in the ledger (fills for approved ones) exactly once, then open the next bar.

Each order's client order id is `{thread}:{start_count}:{bar}:{slot}` (`tradegraph.orders`). It
is derived from state, not from checkpoint ids, so a replay of this node (resume, retry, a crash
before or after the commit, even under `durability="exit"`) maps to the same ids and the ledger's
unique key turns the second attempt into a read of the first.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from langgraph.runtime import Runtime

from graph.context import SessionContext, after_bar, ledger_thread_of, pool_of
from graph.events import EquityEvent, FillEvent
from graph.state import SessionState
from nodes.risk_check import verdict_event
from tradegraph.approval import REVIEW_RULE
from tradegraph.database import Pool
from tradegraph.ledger import OrderOutcome, OrderTicket, record_equity, record_order
from tradegraph.market.prices import next_time
from tradegraph.money import as_text
from tradegraph.orders import ExecutionReport, Verdict, client_order_id
from tradegraph.valuation import Portfolio, mark, mark_positions, value_holdings


async def execute(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Apply this bar's verdicts to the ledger, mark the portfolio and the benchmark, open the next bar."""
    pool = await pool_of(runtime.context)
    clock = datetime.fromisoformat(state["clock"])
    thread_id = ledger_thread_of(runtime)
    reports: list[ExecutionReport] = []
    async with pool.connection() as conn:
        for slot, verdict in enumerate(state.get("verdicts", [])):
            order_id = client_order_id(thread_id, state.get("start_count", 1), state["bar_index"], slot)
            if verdict["rule"] == REVIEW_RULE:  # the reviewer's answer is a verdict too
                runtime.stream_writer(verdict_event(verdict, state["clock"]))
            outcome = await record_order(conn, _ticket(verdict, order_id, state, thread_id, clock))
            report = _execution_report(verdict, outcome)
            reports.append(report)
            fill_event: FillEvent = {"type": "fill", "clock": state["clock"], **report}
            runtime.stream_writer(fill_event)
        booked = after_bar(runtime, start_count=state.get("start_count", 1), clock=clock)
        portfolio = await mark(
            pool, model_id=state["model_id"], clock=clock, mode=state["mode"], as_of=booked, conn=conn
        )
        benchmark = await _benchmark_value(pool, state, clock)
        await record_equity(
            conn,
            thread_id=thread_id,
            model_id=state["model_id"],
            bar_time=clock,
            equity=Decimal(portfolio["equity"]),
            benchmark=benchmark,
        )
    equity_event: EquityEvent = {
        "type": "equity",
        "clock": state["clock"],
        "bar_index": state["bar_index"],
        "bars_total": state["bars_total"],
        "equity": portfolio["equity"],
        "cash": portfolio["cash"],
        "benchmark": as_text(benchmark),
    }
    runtime.stream_writer(equity_event)
    return {"fills": reports, **await _next_bar(pool, state, portfolio)}


def _ticket(
    verdict: Verdict, order_id: str, state: SessionState, thread_id: str, clock: datetime
) -> OrderTicket:
    return OrderTicket(
        client_order_id=order_id,
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


async def _benchmark_value(pool: Pool, state: SessionState, clock: datetime) -> Decimal:
    """Buy-and-hold value at the clock."""
    benchmark = state["benchmark"]
    shares = {symbol: Decimal(count) for symbol, count in benchmark["shares"].items()}
    valued = await value_holdings(
        pool, cash=Decimal(benchmark["cash"]), quantities=shares, clock=clock, mode=state["mode"]
    )
    return valued.equity


async def _next_bar(pool: Pool, state: SessionState, marked: Portfolio) -> dict[str, Any]:
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
        "portfolio": await mark_positions(  # the ledger as booked does not change: only prices do
            pool,
            cash=Decimal(marked["cash"]),
            positions=marked["positions"],
            clock=upcoming,
            mode=state["mode"],
        ),
        "llm_turns": 0,
    }


def _as_decimal(quantity: object) -> Decimal:
    """A verdict's quantity for the ledger (0 for one that is not a finite number: it was rejected)."""
    try:
        value = Decimal(str(quantity))
    except ArithmeticError:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def _execution_report(verdict: Verdict, outcome: OrderOutcome) -> ExecutionReport:
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
