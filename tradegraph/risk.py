"""Deterministic pre-trade risk checks: each proposal gets a verdict with the rule and the reason.

Pure functions over facts gathered by the `risk_check` node, so every rule is testable alone.
Proposals are checked in order and each accepted one reserves its cash, shares, exposure, open
order and trade count, so two orders in one bar cannot together exceed what either may alone.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradegraph.limits import RiskLimits
from tradegraph.margin import Exposure, buying_power, exposure
from tradegraph.money import LEDGER_STEP, as_text, to_money
from tradegraph.orders import ORDER_TYPES, OrderTerms, Proposal, Verdict
from tradegraph.terms import HUNDRED, Shorting

MAX_QUANTITY = 1_000_000_000
"""No single order may exceed this many shares, whatever the limits say."""
MAX_PRICE = Decimal("1e9")
CANCEL_RULE = "cancel_order"


@dataclass
class RiskFacts:
    """What the checks need to know at the session clock."""

    limits: RiskLimits
    cash: Decimal
    positions: dict[str, int]
    """Non-zero positions; shorts are negative."""
    prices: dict[str, Decimal | None]
    """Close of each session symbol's bar at the clock; None when it did not trade then."""
    equity: Decimal
    day_open_equity: Decimal
    fills_today: int
    shorting: Shorting = field(default_factory=Shorting)
    open_order_ids: list[int] = field(default_factory=list)
    """The bot's orders resting in the book."""
    placed: int = 0
    """Orders this bar's accepted proposals will leave in the book."""

    @property
    def open_orders(self) -> int:
        return len(self.open_order_ids) + self.placed


class Rejection(Exception):
    """A failed rule: its name and a reason a person can act on."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule, self.reason = rule, reason


@dataclass(frozen=True)
class OrderSpec:
    """An order's checked terms: type, time in force, prices as ledger decimals."""

    order_type: str = "market"
    time_in_force: str = "day"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    stop_loss_limit: Decimal | None = None

    @property
    def rests(self) -> bool:
        """Whether the order may wait in the book (anything but a market order)."""
        return self.order_type != "market"

    def judged_price(self, close: Decimal) -> Decimal:
        """The price an order is judged at: its limit, else its stop, else the close."""
        return self.limit_price or self.stop_price or close

    def as_terms(self) -> OrderTerms:
        """The terms as a verdict carries them (decimal strings; None when not set)."""
        return {
            "order_type": self.order_type,
            "time_in_force": self.time_in_force,
            "limit_price": _text(self.limit_price),
            "stop_price": _text(self.stop_price),
            "trail_percent": _text(self.trail_percent),
            "take_profit": _text(self.take_profit),
            "stop_loss": _text(self.stop_loss),
            "stop_loss_limit": _text(self.stop_loss_limit),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else as_text(value)


def whole_quantity(raw: Any) -> int:
    """The proposal's quantity as a positive whole number of shares, or a Rejection."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        raise Rejection("quantity", f"quantity must be a number of shares, got {raw!r}")
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise Rejection("quantity", f"quantity must be a number of shares, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise Rejection("quantity", f"quantity must be positive, got {raw}")
    if value != value.to_integral_value():
        raise Rejection("quantity", f"quantity must be a whole number of shares, got {raw}")
    if value > MAX_QUANTITY:
        raise Rejection("quantity", f"quantity {raw} exceeds the {MAX_QUANTITY:,} share maximum")
    return int(value)


def _price_term(
    proposal: Proposal, name: str, *, required: bool, upper: Decimal = MAX_PRICE
) -> Decimal | None:
    raw = proposal.get(name)
    if raw is None or raw == "":
        if required:
            kind = proposal.get("order_type")
            raise Rejection("order_terms", f"a {kind} order needs {name}")
        return None
    try:
        value = Decimal(str(raw)) if not isinstance(raw, bool) else Decimal("NaN")
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0 or value > upper:
        raise Rejection("order_terms", f"{name} must be a positive number below {upper}, got {raw!r}")
    if value.quantize(LEDGER_STEP) != value:
        raise Rejection("order_terms", f"{name} has more than 4 decimal places: {raw}")
    return value


def order_spec(proposal: Proposal, side: str, close: Decimal, band_pct: Decimal) -> OrderSpec:
    """The proposal's order terms, checked: required prices present, on the right side of the
    market, and within the price band of the close (a likely typo otherwise)."""
    kind = proposal.get("order_type") or "market"
    if kind not in ORDER_TYPES:
        raise Rejection("order_terms", f"order_type must be one of {', '.join(ORDER_TYPES)}, got {kind!r}")
    tif = proposal.get("time_in_force") or "day"
    if tif not in ("day", "gtc"):
        raise Rejection("order_terms", f"time_in_force must be day or gtc, got {tif!r}")
    limit = _price_term(proposal, "limit_price", required=kind in ("limit", "stop_limit"))
    stop = _price_term(proposal, "stop_price", required=kind in ("stop", "stop_limit"))
    trail = _price_term(proposal, "trail_percent", required=kind == "trailing_stop", upper=Decimal(99))
    spec = OrderSpec(
        order_type=kind,
        time_in_force=tif,
        limit_price=limit if kind in ("limit", "stop_limit") else None,
        stop_price=stop if kind in ("stop", "stop_limit") else None,
        trail_percent=trail if kind == "trailing_stop" else None,
        take_profit=_price_term(proposal, "take_profit", required=False),
        stop_loss=_price_term(proposal, "stop_loss", required=False),
        stop_loss_limit=_price_term(proposal, "stop_loss_limit", required=False),
    )
    _check_prices(spec, side, close, band_pct)
    return spec


def _check_prices(spec: OrderSpec, side: str, close: Decimal, band_pct: Decimal) -> None:
    buy = side == "buy"
    for name in ("limit_price", "stop_price", "take_profit", "stop_loss", "stop_loss_limit"):
        value: Decimal | None = getattr(spec, name)
        if value is not None and abs(value - close) / close * HUNDRED > band_pct:
            raise Rejection(
                "price_band",
                f"{name} {value} is more than {band_pct}% from the last close {close}; "
                "an order that far from the market is refused as a likely mistake",
            )
    if spec.stop_price is not None and (spec.stop_price <= close if buy else spec.stop_price >= close):
        direction = "above" if buy else "below"
        raise Rejection(
            "order_terms",
            f"a {side} stop must be {direction} the last close {close} (got {spec.stop_price}); "
            "it would trigger at once: send a market or limit order instead",
        )
    if spec.stop_loss_limit is not None and spec.stop_loss is None:
        raise Rejection("order_terms", "stop_loss_limit needs stop_loss")
    entry = spec.judged_price(close)
    if spec.take_profit is not None and (spec.take_profit <= entry if buy else spec.take_profit >= entry):
        direction = "above" if buy else "below"
        raise Rejection(
            "order_terms", f"take_profit {spec.take_profit} must be {direction} the entry {entry}"
        )
    if spec.stop_loss is not None and (spec.stop_loss >= entry if buy else spec.stop_loss <= entry):
        direction = "below" if buy else "above"
        raise Rejection("order_terms", f"stop_loss {spec.stop_loss} must be {direction} the entry {entry}")


@dataclass(frozen=True)
class Accepted:
    """A proposal that passed: what it is judged at, and the rule and reason of the verdict."""

    quantity: int
    price: Decimal
    notional: Decimal
    spec: OrderSpec
    rule: str
    reason: str


def _check(proposal: Proposal, facts: RiskFacts) -> Accepted:
    """Run the rules in order."""
    side, symbol, limits = proposal.get("side"), proposal.get("symbol"), facts.limits
    if side not in ("buy", "sell"):
        raise Rejection("side", f"side must be buy or sell, got {side!r}")
    quantity = whole_quantity(proposal.get("quantity"))
    if symbol not in facts.prices:
        known = ", ".join(sorted(facts.prices))
        raise Rejection("symbol", f"{symbol!r} is not traded in this session (symbols: {known})")
    close = facts.prices[symbol]
    if close is None:
        raise Rejection("price", f"{symbol} has no price at this bar (it did not trade)")
    spec = order_spec(proposal, side, close, limits.price_band_pct)
    price = spec.judged_price(close)
    notional = to_money(price * quantity)
    if facts.fills_today >= limits.max_trades_per_day:
        raise Rejection(
            "max_trades_per_day",
            f"{facts.fills_today} trades today reach the limit of {limits.max_trades_per_day}",
        )
    if (spec.rests or spec.take_profit or spec.stop_loss) and facts.open_orders >= limits.max_open_orders:
        raise Rejection(
            "max_open_orders", f"{facts.open_orders} orders are open, the limit is {limits.max_open_orders}"
        )
    held = facts.positions.get(symbol, 0)
    _check_intent(proposal.get("intent"), side, symbol, quantity, held)
    if side == "sell":
        _check_sell(symbol, quantity, price, held, facts)
    else:
        _check_buy(symbol, quantity, price, held, facts)
    if notional > limits.max_order_notional:
        raise Rejection(
            "max_order_notional",
            f"notional {notional} exceeds the per-order limit {limits.max_order_notional}",
        )
    if limits.approval_notional is not None and notional > limits.approval_notional:
        reason = f"notional {notional} is above the approval threshold {limits.approval_notional}"
        return Accepted(quantity, price, notional, spec, "approval_notional", reason)
    return Accepted(quantity, price, notional, spec, "all_checks", "passed every risk check")


def _check_intent(intent: object, side: str, symbol: str, quantity: int, held: int) -> None:
    if intent in (None, ""):
        return
    if intent not in ("short", "cover"):
        raise Rejection("intent", f"intent must be short or cover, got {intent!r}")
    if intent == "short" and side != "sell" or intent == "cover" and side != "buy":
        raise Rejection("intent", f"a {intent} is a {'sell' if intent == 'short' else 'buy'}, got {side}")
    if intent == "short" and held > 0:
        raise Rejection(
            "intent", f"cannot open a short in {symbol} while {held} are held long: sell them first"
        )
    if intent == "cover" and quantity > -min(held, 0):
        raise Rejection("intent", f"cannot cover {quantity} {symbol}: {max(-held, 0)} held short")


def _check_sell(symbol: str, quantity: int, price: Decimal, held: int, f: RiskFacts) -> None:
    opened = quantity - max(held, 0)
    if opened <= 0:
        return
    if not f.shorting.enabled:
        raise Rejection(
            "no_short_selling", f"cannot sell {quantity} {symbol}: {held} held and short selling is off"
        )
    now = exposure(f.positions, f.prices)
    margin = to_money(opened * price * f.shorting.initial_margin_pct / HUNDRED)
    power = buying_power(f.cash, now, f.shorting)
    if margin > power:
        raise Rejection(
            "margin",
            f"shorting {opened} {symbol} needs initial margin {margin}, buying power is {to_money(power)}",
        )
    shorts = now.short_value + opened * price
    _within(f, "max_short_exposure_pct", shorts, f.limits.max_short_exposure_pct, "shorts")
    after = Exposure(now.long_value - max(held, 0) * price, shorts)
    _exposure_limits(f, after)


def _check_buy(symbol: str, quantity: int, price: Decimal, held: int, f: RiskFacts) -> None:
    opened = quantity - max(-held, 0)  # a buy covers any short first; covering only reduces risk
    if opened <= 0:
        return
    limits = f.limits
    if f.day_open_equity > 0:
        loss_pct = (f.day_open_equity - f.equity) / f.day_open_equity * 100
        if loss_pct >= limits.daily_loss_limit_pct:
            raise Rejection(
                "daily_loss_limit",
                f"equity is down {loss_pct:.2f}% today, at or beyond the "
                f"{limits.daily_loss_limit_pct}% daily loss limit; only sells are allowed",
            )
    now = exposure(f.positions, f.prices)
    cost = to_money(opened * price)
    power = buying_power(f.cash, now, f.shorting)
    if cost > power:
        if now.short_value:
            reason = (
                f"notional {cost} exceeds buying power {to_money(power)} (cash {f.cash} less short margin)"
            )
        else:
            reason = f"notional {cost} exceeds available cash {f.cash}"
        raise Rejection("buying_power", reason)
    after = (max(held, 0) + opened) * price
    share_pct = after / f.equity * 100 if f.equity > 0 else Decimal(100)
    if share_pct > limits.max_position_pct:
        raise Rejection(
            "max_position_pct",
            f"{symbol} would be {share_pct:.2f}% of equity, above the {limits.max_position_pct}% limit",
        )
    covered = (quantity - opened) * price
    _exposure_limits(f, Exposure(now.long_value + opened * price, now.short_value - covered))


def _exposure_limits(f: RiskFacts, after: Exposure) -> None:
    _within(f, "max_gross_exposure_pct", after.gross, f.limits.max_gross_exposure_pct, "gross exposure")
    _within(f, "max_net_exposure_pct", abs(after.net), f.limits.max_net_exposure_pct, "net exposure")


def _within(f: RiskFacts, rule: str, value: Decimal, limit_pct: Decimal, what: str) -> None:
    pct = value / f.equity * HUNDRED if f.equity > 0 else Decimal(100) if value else Decimal(0)
    if pct > limit_pct:
        raise Rejection(rule, f"{what} would be {pct:.2f}% of equity, above the {limit_pct}% limit")


def _check_cancel(proposal: Proposal, facts: RiskFacts) -> str:
    raw = proposal.get("cancel_order_id")
    try:
        order_id = int(str(raw))
    except ValueError:
        raise Rejection(CANCEL_RULE, f"order_id must be a whole number, got {raw!r}") from None
    if order_id not in facts.open_order_ids:
        raise Rejection(CANCEL_RULE, f"order {order_id} is not one of your open orders")
    return f"cancel order {order_id}"


def evaluate(proposals: list[Proposal], facts: RiskFacts) -> list[Verdict]:
    """A verdict for every proposal, in order, reserving what each accepted one uses."""
    verdicts: list[Verdict] = []
    for proposal in proposals:
        base: Verdict = {
            "proposal_id": proposal.get("id", ""),
            "symbol": str(proposal.get("symbol")),
            "side": str(proposal.get("side")),
            "quantity": proposal.get("quantity"),
            "price": None,
            "notional": None,
            "status": "rejected",
            "rule": "",
            "reason": "",
        }
        if proposal.get("cancel_order_id") is not None:
            try:
                reason = _check_cancel(proposal, facts)
            except Rejection as rejection:
                verdicts.append({**base, "rule": rejection.rule, "reason": rejection.reason})
                continue
            verdicts.append(
                {
                    **base,
                    "cancel_order_id": proposal["cancel_order_id"],
                    "status": "approved",
                    "rule": CANCEL_RULE,
                    "reason": reason,
                }
            )
            continue
        try:
            accepted = _check(proposal, facts)
        except Rejection as rejection:
            verdicts.append({**base, "rule": rejection.rule, "reason": rejection.reason})
            continue
        terms = accepted.spec.as_terms()
        intent = proposal.get("intent")
        verdicts.append(
            {
                **base,
                **terms,
                "intent": intent if intent else None,
                "quantity": accepted.quantity,
                "price": as_text(accepted.price),
                "notional": as_text(accepted.notional),
                "status": "needs_approval" if accepted.rule == "approval_notional" else "approved",
                "rule": accepted.rule,
                "reason": accepted.reason,
            }
        )
        _reserve(facts, base["symbol"], base["side"], accepted)
    return verdicts


def _reserve(facts: RiskFacts, symbol: str, side: str, accepted: Accepted) -> None:
    sign = 1 if side == "buy" else -1
    facts.cash -= sign * accepted.notional
    facts.positions[symbol] = facts.positions.get(symbol, 0) + sign * accepted.quantity
    facts.fills_today += 1
    if accepted.spec.rests or accepted.spec.take_profit or accepted.spec.stop_loss:
        facts.placed += 1
