"""execute: book every verdict in the ledger exactly once, then open the next bar.

At the bar's close each verdict becomes an order: a market order (or a marketable limit) fills at
once, anything else rests in the book; a cancellation closes an order. The portfolio and the
buy-and-hold benchmark are marked, and a margin call places covers for the next bar. Opening the
next bar charges overnight borrow fees and judges the resting orders against it, so the decider
sees the ledger as it stands at the new bar (`tradegraph.execution` has the timing rules).

Every ledger call is idempotent on a key derived from state, never from checkpoint ids: orders on
`{thread}:{start_count}:{bar}:{slot}` (`tradegraph.orders`), fills on (order, bar), judgments on
the order's last judged bar, fees on (session, bar, symbol). A replay of this node (resume, retry,
a crash before or after a commit, even under `durability="exit"`) changes nothing twice.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from langgraph.runtime import Runtime
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from graph.context import SessionContext, after_bar, bar_start, ledger_thread_of, pool_of
from graph.events import FeeEvent, FillEvent, OrderEvent, equity_event
from graph.state import SessionState
from nodes.bars import benchmark_value, upcoming_bar
from nodes.risk_check import verdict_event
from tradegraph.accounts import BotTerms, get_model, terms_of
from tradegraph.approval import REVIEW_RULE
from tradegraph.database import Pool
from tradegraph.execution import (
    MARGIN_CALL_RULE,
    Judged,
    charge_overnight,
    fill_at_once,
    judge_resting,
    margin_call,
    order_ticket,
)
from tradegraph.ledger import (
    EquityPoint,
    OrderOutcome,
    OrderTicket,
    close_order,
    open_orders,
    place_order,
    record_equity,
)
from tradegraph.market.prices import bar_at
from tradegraph.matching import RestingOrder
from tradegraph.money import as_text
from tradegraph.orders import OPEN_STATUSES, ExecutionReport, Verdict, client_order_id, session_prefix
from tradegraph.valuation import Portfolio, mark, mark_positions

SESSION_ENDED = "the session ended at its last bar; open orders do not outlive their session"


class _Bar:
    """One execute call: the session's identity and clock, and the stream to report on."""

    def __init__(self, state: SessionState, runtime: Runtime[SessionContext], pool: Pool) -> None:
        self.state, self.runtime, self.pool = state, runtime, pool
        self.clock = datetime.fromisoformat(state["clock"])
        self.thread_id = ledger_thread_of(runtime)
        self.start_count = state.get("start_count", 1)
        self.model_id = state["model_id"]
        self.mode = state["mode"]

    def order_event(
        self,
        order: OrderTicket | RestingOrder,
        order_id: int,
        *,
        status: str,
        filled_quantity: int,
        reason: str,
        clock: datetime,
    ) -> None:
        """Stream one status change of an order."""
        event: OrderEvent = {
            "type": "order",
            "clock": clock.isoformat(),
            "order_id": order_id,
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "side": order.side,
            "order_type": order.order_type,
            "status": status,
            "filled_quantity": filled_quantity,
            "reason": reason,
        }
        self.runtime.stream_writer(event)

    def outcome_event(
        self, order: OrderTicket | RestingOrder, outcome: OrderOutcome, clock: datetime
    ) -> None:
        """Stream what the ledger just did with an order."""
        self.order_event(
            order,
            outcome.order_id,
            status=outcome.status,
            filled_quantity=outcome.filled_quantity,
            reason=outcome.reason,
            clock=clock,
        )

    def fill_event(self, report: ExecutionReport, clock: datetime) -> None:
        event: FillEvent = {"type": "fill", "clock": clock.isoformat(), **report}
        self.runtime.stream_writer(event)


async def execute(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Apply this bar's verdicts to the ledger, mark the portfolio and the benchmark, open the next bar."""
    pool = await pool_of(runtime.context)
    bar = _Bar(state, runtime, pool)
    upcoming = await upcoming_bar(pool, state, bar.clock, state["bar_index"])
    verdicts = state.get("verdicts", [])
    open_left = state.get("open_orders", 0)
    shorts = any(q < 0 for q in state["portfolio"]["positions"].values())
    reports: list[ExecutionReport] = []
    async with pool.connection() as conn:
        terms = await _terms(conn, state) if verdicts or open_left or shorts else BotTerms()
        for slot, verdict in enumerate(verdicts):
            if verdict["rule"] == REVIEW_RULE:  # the reviewer's answer is a verdict too
                runtime.stream_writer(verdict_event(verdict, state["clock"]))
            order_id = client_order_id(bar.thread_id, bar.start_count, state["bar_index"], slot)
            report, resting = await _book(conn, bar, verdict, order_id, upcoming, terms)
            reports.append(report)
            bar.fill_event(report, bar.clock)
            open_left += resting
        if upcoming is None and open_left:
            await _close_session_orders(conn, bar)
            open_left = 0
        booked = after_bar(runtime, start_count=bar.start_count, clock=bar.clock)
        portfolio = await mark(
            pool, model_id=bar.model_id, clock=bar.clock, mode=bar.mode, as_of=booked, conn=conn
        )
        benchmark = await benchmark_value(pool, state, bar.clock)
        await record_equity(
            conn,
            thread_id=bar.thread_id,
            model_id=bar.model_id,
            points=[EquityPoint(bar.clock, Decimal(portfolio["equity"]), benchmark)],
        )
        if upcoming is not None and any(q < 0 for q in portfolio["positions"].values()):
            open_left += await _margin_call(conn, bar, portfolio, terms)
    runtime.stream_writer(
        equity_event(
            clock=bar.clock,
            bar_index=state["bar_index"],
            bars_total=state["bars_total"],
            equity=portfolio["equity"],
            cash=portfolio["cash"],
            benchmark=benchmark,
        )
    )
    if upcoming is None:
        return {"fills": reports, "portfolio": portfolio, "done": True, "open_orders": 0}
    return {"fills": reports, **await _next_bar(bar, portfolio, upcoming, terms, open_left)}


async def _terms(conn: AsyncConnection[DictRow], state: SessionState) -> BotTerms:
    """The terms `risk_check` read at this bar; the model row's for a checkpoint from before it kept them."""
    if "terms" in state:
        return terms_of(state["terms"])
    model = await get_model(conn, model_id=state["model_id"], user_id=None)
    if model is None:
        raise LookupError(f"model {state['model_id']} no longer exists")
    return terms_of(model)


async def _book(
    conn: AsyncConnection[DictRow],
    bar: _Bar,
    verdict: Verdict,
    order_id: str,
    upcoming: datetime | None,
    terms: BotTerms,
) -> tuple[ExecutionReport, int]:
    """Book one verdict: place (and perhaps fill) its order, or cancel the order it names.
    Returns the report and how many orders it may have left resting."""
    cancel = verdict.get("cancel_order_id")
    if cancel is not None and verdict["status"] == "approved":
        reason = f"cancelled by the decider at bar {bar.state['bar_index']}"
        closed = await close_order(
            conn, int(str(cancel)), status="cancelled", reason=reason, bar_time=bar.clock
        )
        status, changed = closed or ("rejected", False)
        report = _report(verdict, order_id, status="cancelled" if status == "cancelled" else "rejected")
        return {
            **report,
            "reason": reason if changed else f"order {cancel} is {status}",
            "replayed": not changed,
        }, 0
    approved = verdict["status"] == "approved"
    at_close = await bar_at(bar.pool, verdict["symbol"], bar.clock, bar.mode) if approved else None
    ticket = order_ticket(
        verdict,
        client_order_id=order_id,
        model_id=bar.model_id,
        thread_id=bar.thread_id,
        clock=bar.clock,
        good_for=(upcoming or bar.clock).date(),
        close=at_close.close if at_close else None,
    )
    outcome = await place_order(conn, ticket, fill_at_once(ticket, at_close, terms, verdict["reason"]))
    if ticket.status == "open":
        bar.outcome_event(ticket, outcome, bar.clock)
    brackets = outcome.filled and (ticket.take_profit is not None or ticket.stop_loss is not None)
    resting = int(outcome.status in OPEN_STATUSES) + 2 * int(brackets)
    return _report(verdict, order_id, outcome=outcome), resting


async def _close_session_orders(conn: AsyncConnection[DictRow], bar: _Bar) -> None:
    for order in await open_orders(conn, thread_id=bar.thread_id, start_count=bar.start_count):
        closed = await close_order(
            conn, order.id, status="cancelled", reason=SESSION_ENDED, bar_time=bar.clock
        )
        if closed and closed[1]:
            bar.order_event(
                order,
                order.id,
                status="cancelled",
                filled_quantity=order.filled_quantity,
                reason=SESSION_ENDED,
                clock=bar.clock,
            )


async def _margin_call(conn: AsyncConnection[DictRow], bar: _Bar, marked: Portfolio, terms: BotTerms) -> int:
    """Place market covers, filled at the next open, when equity is below the maintenance requirement."""
    resting = await open_orders(conn, thread_id=bar.thread_id, start_count=bar.start_count)
    covering: dict[str, int] = {}
    for order in resting:
        if order.side == "buy":
            covering[order.symbol] = covering.get(order.symbol, 0) + order.remaining
    calls = await margin_call(
        bar.pool,
        cash=Decimal(marked["cash"]),
        positions=marked["positions"],
        equity=Decimal(marked["equity"]),
        clock=bar.clock,
        mode=bar.mode,
        terms=terms,
        covering=covering,
    )
    for symbol, quantity, reason in calls:
        ticket = OrderTicket(
            client_order_id=client_order_id(
                bar.thread_id, bar.start_count, bar.state["bar_index"], f"{MARGIN_CALL_RULE}:{symbol}"
            ),
            model_id=bar.model_id,
            thread_id=bar.thread_id,
            bar_time=bar.clock,
            symbol=symbol,
            side="buy",
            quantity=Decimal(quantity),
            status="open",
            rule=MARGIN_CALL_RULE,
            reason=reason,
            time_in_force="gtc",
        )
        bar.outcome_event(ticket, await place_order(conn, ticket), bar.clock)
    return len(calls)


async def _next_bar(
    bar: _Bar, marked: Portfolio, upcoming: datetime, terms: BotTerms, open_left: int
) -> dict[str, Any]:
    """The state update that opens the next bar: overnight borrow fees, resting orders judged against
    it, and the portfolio as it stands there.

    `marked` is the portfolio just marked at the bar that ended; its equity becomes the day's
    opening equity when the next bar is on a new trading day (for the daily loss limit).
    """
    state, pool = bar.state, bar.pool
    new_day = upcoming.date() != bar.clock.date()
    shorts = {s: q for s, q in marked["positions"].items() if q < 0}
    update: dict[str, Any] = {
        "clock": upcoming.isoformat(),
        "bar_index": state["bar_index"] + 1,
        "day_open_equity": marked["equity"] if new_day else state["day_open_equity"],
        "llm_turns": 0,
        "open_orders": 0,
    }
    if not open_left and not (new_day and shorts):  # the ledger does not change: only prices do
        update["portfolio"] = await mark_positions(
            pool, cash=Decimal(marked["cash"]), positions=marked["positions"], clock=upcoming, mode=bar.mode
        )
        return update
    prefix = session_prefix(bar.thread_id, bar.start_count)
    async with pool.connection() as conn:
        if new_day and shorts:
            for fee in await charge_overnight(
                conn,
                pool,
                positions=shorts,
                since=bar.clock,
                at=upcoming,
                mode=bar.mode,
                terms=terms,
                fee_key_prefix=f"{prefix}fee:{state['bar_index'] + 1}:",
                model_id=bar.model_id,
                thread_id=bar.thread_id,
            ):
                event: FeeEvent = {
                    "type": "fee",
                    "clock": upcoming.isoformat(),
                    "symbol": fee.symbol,
                    "quantity": fee.quantity,
                    "price": str(fee.price),
                    "days": fee.days,
                    "amount": as_text(fee.amount),
                }
                bar.runtime.stream_writer(event)
        if open_left:
            update["open_orders"] = await _judge(conn, bar, upcoming, terms)
        as_of = bar_start(bar.runtime, start_count=bar.start_count, clock=upcoming)
        update["portfolio"] = await mark(
            pool, model_id=bar.model_id, clock=upcoming, mode=bar.mode, as_of=as_of, conn=conn
        )
    return update


async def _judge(conn: AsyncConnection[DictRow], bar: _Bar, upcoming: datetime, terms: BotTerms) -> int:
    """Judge the session's resting orders against the next bar; returns how many stay open."""
    resting = await open_orders(conn, thread_id=bar.thread_id, start_count=bar.start_count)
    judged = await judge_resting(conn, bar.pool, resting, at=upcoming, mode=bar.mode, terms=terms)
    for change in judged:
        order = change.order
        if change.outcome is None:
            bar.order_event(
                order,
                order.id,
                status=change.status or "open",
                filled_quantity=order.filled_quantity,
                reason=change.reason,
                clock=upcoming,
            )
            continue
        bar.outcome_event(order, change.outcome, upcoming)
        bar.fill_event(_report_for_order(change, change.outcome), upcoming)
    if not judged:
        return len(resting)
    return len(await open_orders(conn, thread_id=bar.thread_id, start_count=bar.start_count))


def _report(
    verdict: Verdict, order_id: str, *, outcome: OrderOutcome | None = None, status: str = "rejected"
) -> ExecutionReport:
    report: ExecutionReport = {
        "client_order_id": order_id,
        "symbol": verdict["symbol"],
        "side": verdict["side"],
        "quantity": 0,
        "price": None,
        "notional": None,
        "status": status,  # type: ignore[typeddict-item]
        "rule": verdict["rule"],
        "reason": verdict["reason"],
        "replayed": False,
        "order_type": verdict.get("order_type") or "market",
    }
    if outcome is None:
        return report
    return cast(ExecutionReport, {**report, **_outcome_fields(outcome)})


def _report_for_order(change: Judged, outcome: OrderOutcome) -> ExecutionReport:
    order = change.order
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        **_outcome_fields(outcome),  # type: ignore[typeddict-item]
    }


def _outcome_fields(outcome: OrderOutcome) -> dict[str, Any]:
    return {
        "quantity": outcome.quantity,
        "price": as_text(outcome.price) if outcome.price is not None else None,
        "notional": as_text(outcome.notional) if outcome.notional is not None else None,
        "commission": as_text(outcome.commission) if outcome.commission is not None else None,
        "status": outcome.status,
        "rule": outcome.rule,
        "reason": outcome.reason,
        "filled_quantity": outcome.filled_quantity,
        "replayed": outcome.replayed,
    }
