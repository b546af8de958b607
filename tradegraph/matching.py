"""How one bar treats a resting order: fill, trigger, trail, expire or wait. Pure, no look-ahead.

A resting order is judged against a bar that closed after it was placed, using only that bar's
open, high, low, close and volume, as brokers' paper trading and most backtesters do:
- a limit buy fills when the bar trades at or below the limit, at the better of the open and the
  limit (a sell mirrors it);
- a stop buy triggers when the bar trades at or above the stop and fills at the worse of the open
  and the stop, so a gap through the stop fills at the open (a sell mirrors it); slippage applies;
- a stop-limit triggers like a stop; it fills in the same bar only when the trigger price already
  satisfies the limit, otherwise it rests as a limit order from the next bar;
- a trailing stop's stop follows the best price seen since it was placed (the high for a sell, the
  low for a buy): each bar is checked against the stop as it stood before the bar, then the mark
  moves with the bar;
- the rest of a market order, and of a stop that already filled in part, fills at the next open;
- a fill takes at most the bar's fill cap (a share of its volume); the rest stays open;
- a day order expires once a bar of a later trading day arrives.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from tradegraph.market.bar import Bar
from tradegraph.money import LEDGER_STEP

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RestingOrder:
    """An open order as the ledger holds it."""

    id: int
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    quantity: int
    filled_quantity: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    trail_anchor: Decimal | None = None
    triggered: bool = False
    good_for: date | None = None
    leg: str | None = None
    evaluated_at: datetime | None = None
    """The last bar it was placed at or judged against: it is judged against each later bar once."""

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity

    def trailing_stop(self) -> Decimal:
        """The trailing stop's current stop price, from its mark before the next bar."""
        assert self.trail_anchor is not None and self.trail_percent is not None
        offset = self.trail_percent / HUNDRED
        factor = 1 - offset if self.side == "sell" else 1 + offset
        return (self.trail_anchor * factor).quantize(LEDGER_STEP, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Evaluation:
    """What a bar did to a resting order. `price` is before slippage; `slips` says if slippage applies."""

    reason: str | None = None
    """Why something changed (None: nothing worth recording happened)."""
    price: Decimal | None = None
    quantity: int = 0
    slips: bool = False
    expired: bool = False
    trail_anchor: Decimal | None = None
    triggered: bool = False

    @property
    def fills(self) -> bool:
        return self.quantity > 0 and self.price is not None


def evaluate(order: RestingOrder, bar: Bar, cap: int) -> Evaluation:
    """Judge a resting order against one later bar; `cap` is the most shares the bar can fill."""
    if order.time_in_force == "day" and order.good_for is not None and bar.time.date() > order.good_for:
        return Evaluation(reason=f"day order expired after the last bar of {order.good_for}", expired=True)
    price, why, slips, anchor, triggered = _price(order, bar)
    if price is None:
        return Evaluation(reason=why, trail_anchor=anchor, triggered=triggered)
    quantity = min(order.remaining, cap)
    if quantity <= 0:
        return Evaluation(
            reason=f"{why}, but the bar traded no volume", trail_anchor=anchor, triggered=triggered
        )
    if quantity < order.remaining:
        why = f"{why}; {quantity} of {order.remaining} filled (volume cap {cap} shares)"
    return Evaluation(reason=why, price=price, quantity=quantity, slips=slips, triggered=triggered)


def _price(order: RestingOrder, bar: Bar) -> tuple[Decimal | None, str | None, bool, Decimal | None, bool]:
    """The fill price (or None), why, whether slippage applies, a new trailing mark, a new trigger."""
    buy = order.side == "buy"
    kind = order.order_type
    if kind == "market" or (kind in ("stop", "trailing_stop") and order.filled_quantity > 0):
        return bar.open, f"filled at the open {bar.open}", True, None, False
    if kind == "limit" or (kind == "stop_limit" and order.triggered):
        assert order.limit_price is not None
        return (*_limit(buy, order.limit_price, bar), False, None, False)
    if kind == "stop":
        assert order.stop_price is not None
        price, why = _stop(buy, order.stop_price, bar)
        return price, why, price is not None, None, False
    if kind == "stop_limit":
        assert order.stop_price is not None and order.limit_price is not None
        trigger, why = _stop(buy, order.stop_price, bar)
        if trigger is None:
            return None, None, False, None, False
        if (trigger <= order.limit_price) if buy else (trigger >= order.limit_price):
            return trigger, f"{why}; within the limit {order.limit_price}", False, None, True
        return (
            None,
            f"{why}; limit {order.limit_price} not reached, resting as a limit order",
            False,
            None,
            True,
        )
    assert kind == "trailing_stop"
    stop = order.trailing_stop()
    price, why = _stop(buy, stop, bar)
    if price is not None:
        mark = "high" if not buy else "low"
        return (
            price,
            f"trailing {why} ({order.trail_percent}% from the {mark} {order.trail_anchor})",
            True,
            None,
            False,
        )
    assert order.trail_anchor is not None
    anchor = min(order.trail_anchor, bar.low) if buy else max(order.trail_anchor, bar.high)
    return None, None, False, anchor if anchor != order.trail_anchor else None, False


def _limit(buy: bool, limit: Decimal, bar: Bar) -> tuple[Decimal | None, str | None]:
    if buy and bar.low <= limit:
        return min(bar.open, limit), f"limit {limit} reached (low {bar.low})"
    if not buy and bar.high >= limit:
        return max(bar.open, limit), f"limit {limit} reached (high {bar.high})"
    return None, None


def _stop(buy: bool, stop: Decimal, bar: Bar) -> tuple[Decimal | None, str | None]:
    if buy and bar.high >= stop:
        price = max(bar.open, stop)
        gap = " (gapped through it at the open)" if bar.open > stop else ""
        return price, f"stop {stop} reached (high {bar.high}){gap}"
    if not buy and bar.low <= stop:
        price = min(bar.open, stop)
        gap = " (gapped through it at the open)" if bar.open < stop else ""
        return price, f"stop {stop} reached (low {bar.low}){gap}"
    return None, None
