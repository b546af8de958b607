"""Turning verdicts and bars into ledger writes: placements, fills of resting orders, borrow fees and
margin calls. Each function makes idempotent ledger calls, so `execute` may run any number of times.

Timing, without look-ahead, for a session at bar T:
- orders approved at T are placed at T's close; a market order (or a limit already at or through
  the close) fills at once at the close, up to the bar's fill cap;
- orders resting after T are judged against the next bar, T+1, before the decider sees T+1: their
  fills, expiries and borrow fees are dated T+1 and are part of the ledger as of T+1;
- a margin call found at T's mark places market covers that fill at T+1's open.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from tradegraph.accounts import BotTerms
from tradegraph.database import Pool
from tradegraph.ledger import (
    FillTicket,
    OrderOutcome,
    OrderTicket,
    charge_borrow_fee,
    fill_order,
    touch_order,
)
from tradegraph.margin import exposure, maintenance_shortfall
from tradegraph.market.bar import Bar
from tradegraph.market.prices import Mode, bar_at, history
from tradegraph.matching import RestingOrder, evaluate
from tradegraph.money import to_money
from tradegraph.orders import Verdict
from tradegraph.terms import HUNDRED

MARGIN_CALL_RULE = "margin_call"


def _decimal(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def order_ticket(
    verdict: Verdict,
    *,
    client_order_id: str,
    model_id: int,
    thread_id: str,
    clock: datetime,
    good_for: date,
    close: Decimal | None,
) -> OrderTicket:
    """The ledger order of a verdict: open when approved (it fills now or rests), else rejected."""
    kind = verdict.get("order_type") or "market"
    tif = verdict.get("time_in_force") or "day"
    return OrderTicket(
        client_order_id=client_order_id,
        model_id=model_id,
        thread_id=thread_id,
        bar_time=clock,
        symbol=verdict["symbol"],
        side=verdict["side"],
        quantity=_quantity(verdict["quantity"]),
        status="open" if verdict["status"] == "approved" else "rejected",
        rule=verdict["rule"],
        reason=verdict["reason"],
        order_type=kind,
        time_in_force=tif,
        limit_price=_decimal(verdict.get("limit_price")),
        stop_price=_decimal(verdict.get("stop_price")),
        trail_percent=_decimal(verdict.get("trail_percent")),
        trail_anchor=close if kind == "trailing_stop" else None,
        take_profit=_decimal(verdict.get("take_profit")),
        stop_loss=_decimal(verdict.get("stop_loss")),
        stop_loss_limit=_decimal(verdict.get("stop_loss_limit")),
        good_for=good_for if tif == "day" else None,
    )


def _quantity(quantity: object) -> Decimal:
    """A verdict's quantity for the ledger (0 for one that is not a finite number: it was rejected)."""
    try:
        value = Decimal(str(quantity))
    except ArithmeticError:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def fill_at_once(ticket: OrderTicket, bar: Bar | None, terms: BotTerms, reason: str) -> FillTicket | None:
    """The fill of a new order at its own bar's close, when it fills at once: a market order, or a
    limit at or through the close. None when it rests (or the bar did not trade)."""
    if ticket.status != "open" or bar is None:
        return None
    buy = ticket.side == "buy"
    if ticket.order_type == "market":
        price, slips = bar.close, True
    elif (
        ticket.order_type == "limit"
        and ticket.limit_price is not None
        and (bar.close <= ticket.limit_price if buy else bar.close >= ticket.limit_price)
    ):
        price, slips, reason = bar.close, False, f"limit {ticket.limit_price} marketable: filled at the close"
    else:
        return None
    quantity = min(int(ticket.quantity), terms.execution.fill_cap(bar.volume))
    if quantity <= 0:
        return None
    if quantity < ticket.quantity:
        reason = (
            f"{reason}; {quantity} of {int(ticket.quantity)} filled (volume cap), the rest at the next open"
        )
    return _fill(ticket.side, bar.time, quantity, price, slips, terms, reason)


def _fill(
    side: str, at: datetime, quantity: int, base: Decimal, slips: bool, terms: BotTerms, reason: str
) -> FillTicket:
    price = terms.costs.slipped(base, side) if slips else base
    return FillTicket(
        bar_time=at,
        quantity=quantity,
        price=price,
        commission=terms.costs.commission(quantity=quantity, price=price),
        slippage=to_money(abs(price - base) * quantity),
        allow_short=terms.shorting.enabled,
        reason=reason,
    )


@dataclass(frozen=True)
class Judged:
    """A resting order judged at a bar: the fill's outcome when it filled, else the new status."""

    order: RestingOrder
    reason: str
    outcome: OrderOutcome | None = None
    status: str | None = None


async def judge_resting(
    conn: AsyncConnection[DictRow],
    pool: Pool,
    orders: Sequence[RestingOrder],
    *,
    at: datetime,
    mode: Mode,
    terms: BotTerms,
) -> list[Judged]:
    """Judge each resting order against the bar at `at`, once: orders already judged at it (a replay)
    are skipped. Returns what changed, for the stream."""
    judged: list[Judged] = []
    for order in orders:
        if order.evaluated_at is not None and order.evaluated_at >= at:
            continue
        bar = await bar_at(pool, order.symbol, at, mode)
        if bar is None or bar.time != at:
            continue  # the symbol did not trade at this bar; the next one judges the order
        verdict = evaluate(order, bar, terms.execution.fill_cap(bar.volume))
        if verdict.fills:
            assert verdict.price is not None and verdict.reason is not None
            fill = _fill(
                order.side, at, verdict.quantity, verdict.price, verdict.slips, terms, verdict.reason
            )
            outcome = await fill_order(conn, order, fill)
            judged.append(Judged(order, outcome.reason, outcome=outcome))
        elif verdict.expired or verdict.triggered or verdict.trail_anchor is not None or verdict.reason:
            status = "expired" if verdict.expired else None
            changed = await touch_order(
                conn,
                order.id,
                at,
                status=status,
                reason=verdict.reason,
                trail_anchor=verdict.trail_anchor,
                triggered=verdict.triggered,
            )
            if changed and verdict.reason:
                judged.append(Judged(order, verdict.reason, status=status or "open"))
    return judged


@dataclass(frozen=True)
class Fee:
    """A borrow fee charged on one short position."""

    symbol: str
    quantity: int
    price: Decimal
    days: int
    amount: Decimal


async def charge_overnight(
    conn: AsyncConnection[DictRow],
    pool: Pool,
    *,
    positions: dict[str, int],
    since: datetime,
    at: datetime,
    mode: Mode,
    terms: BotTerms,
    fee_key_prefix: str,
    model_id: int,
    thread_id: str,
) -> list[Fee]:
    """Borrow fees for the shorts held from the bar at `since` into a new day at `at`: each short's
    value at the last close times the yearly rate, per calendar day, over 360 days."""
    days = (at.date() - since.date()).days
    fees: list[Fee] = []
    for symbol, quantity in positions.items():
        if quantity >= 0 or days <= 0:
            continue
        last = await history(pool, symbol, since, mode, limit=1)
        if not last:
            continue
        bar = last[-1]
        amount = terms.shorting.borrow_fee(quantity=quantity, price=bar.close, days=days)
        await charge_borrow_fee(
            conn,
            fee_key=f"{fee_key_prefix}{symbol}",
            model_id=model_id,
            thread_id=thread_id,
            bar_time=at,
            symbol=symbol,
            quantity=-quantity,
            price=bar.close,
            days=days,
            amount=amount,
        )
        fees.append(Fee(symbol, -quantity, bar.close, days, amount))
    return fees


async def margin_call(
    pool: Pool,
    *,
    cash: Decimal,
    positions: dict[str, int],
    equity: Decimal,
    clock: datetime,
    mode: Mode,
    terms: BotTerms,
    covering: dict[str, int],
) -> list[tuple[str, int, str]]:
    """When equity is below the maintenance requirement at the clock: (symbol, shares, reason) to
    cover at the next bar's open, for every short not already being covered (`covering`: shares
    of open buy orders per symbol)."""
    prices: dict[str, Decimal | None] = {}
    for symbol in positions:
        last = await history(pool, symbol, clock, mode, limit=1)
        prices[symbol] = last[-1].close if last else None
    held = exposure(positions, prices)
    shortfall = maintenance_shortfall(equity, held, terms.shorting)
    if shortfall is None:
        return []
    required = to_money(held.short_value * terms.shorting.maintenance_margin_pct / HUNDRED)
    reason = (
        f"margin call: equity {equity} is below the maintenance requirement {required} "
        f"({terms.shorting.maintenance_margin_pct}% of shorts worth {to_money(held.short_value)}); "
        "covering at the next bar's open"
    )
    calls = []
    for symbol, quantity in positions.items():
        uncovered = -quantity - covering.get(symbol, 0)
        if quantity < 0 and uncovered > 0:
            calls.append((symbol, uncovered, reason))
    return calls
