"""Deterministic pre-trade risk checks: each proposal gets a verdict with the rule and the reason.

Pure functions over facts gathered by the `risk_check` node, so every rule is testable alone.
Proposals are checked in order and each accepted one reserves its cash, shares and trade count,
so two orders in one bar cannot together exceed what either may alone.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradegraph.limits import RiskLimits
from tradegraph.money import as_text, to_money
from tradegraph.orders import Proposal, Verdict

MAX_QUANTITY = 1_000_000_000
"""No single order may exceed this many shares, whatever the limits say."""


@dataclass
class RiskFacts:
    """What the checks need to know at the session clock."""

    limits: RiskLimits
    cash: Decimal
    positions: dict[str, int]
    prices: dict[str, Decimal | None]
    """Close of each session symbol's bar at the clock; None when it did not trade then."""
    equity: Decimal
    day_open_equity: Decimal
    fills_today: int


class Rejection(Exception):
    """A failed rule: its name and a reason a person can act on."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule, self.reason = rule, reason


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


def _check(proposal: Proposal, facts: RiskFacts) -> tuple[int, Decimal, Decimal, str, str]:
    """Run the rules in order; returns quantity, price, notional and the passing rule/reason."""
    side, symbol, limits = proposal.get("side"), proposal.get("symbol"), facts.limits
    if side not in ("buy", "sell"):
        raise Rejection("side", f"side must be buy or sell, got {side!r}")
    quantity = whole_quantity(proposal.get("quantity"))
    if symbol not in facts.prices:
        known = ", ".join(sorted(facts.prices))
        raise Rejection("symbol", f"{symbol!r} is not traded in this session (symbols: {known})")
    price = facts.prices[symbol]
    if price is None:
        raise Rejection("price", f"{symbol} has no price at this bar (it did not trade)")
    notional = to_money(price * quantity)
    if facts.fills_today >= limits.max_trades_per_day:
        raise Rejection(
            "max_trades_per_day",
            f"{facts.fills_today} trades today reach the limit of {limits.max_trades_per_day}",
        )
    if side == "sell":
        held = facts.positions.get(symbol, 0)
        if quantity > held:
            raise Rejection("no_short_selling", f"cannot sell {quantity} {symbol}: {held} held")
    else:
        _check_buy(symbol, quantity, price, notional, facts)
    if notional > limits.max_order_notional:
        raise Rejection(
            "max_order_notional",
            f"notional {notional} exceeds the per-order limit {limits.max_order_notional}",
        )
    if limits.approval_notional is not None and notional > limits.approval_notional:
        return (
            quantity,
            price,
            notional,
            "approval_notional",
            (f"notional {notional} is above the approval threshold {limits.approval_notional}"),
        )
    return quantity, price, notional, "all_checks", "passed every risk check"


def _check_buy(symbol: str, quantity: int, price: Decimal, notional: Decimal, f: RiskFacts) -> None:
    limits = f.limits
    if f.day_open_equity > 0:
        loss_pct = (f.day_open_equity - f.equity) / f.day_open_equity * 100
        if loss_pct >= limits.daily_loss_limit_pct:
            raise Rejection(
                "daily_loss_limit",
                f"equity is down {loss_pct:.2f}% today, at or beyond the "
                f"{limits.daily_loss_limit_pct}% daily loss limit; only sells are allowed",
            )
    if notional > f.cash:
        raise Rejection("buying_power", f"notional {notional} exceeds available cash {f.cash}")
    after = (f.positions.get(symbol, 0) + quantity) * price
    share_pct = after / f.equity * 100 if f.equity > 0 else Decimal(100)
    if share_pct > limits.max_position_pct:
        raise Rejection(
            "max_position_pct",
            f"{symbol} would be {share_pct:.2f}% of equity, above the {limits.max_position_pct}% limit",
        )


def evaluate(proposals: list[Proposal], facts: RiskFacts) -> list[Verdict]:
    """A verdict for every proposal, in order, reserving what each accepted one uses."""
    verdicts: list[Verdict] = []
    for proposal in proposals:
        proposal_id = proposal.get("id", "")
        symbol, side = str(proposal.get("symbol")), str(proposal.get("side"))
        try:
            quantity, price, notional, rule, reason = _check(proposal, facts)
        except Rejection as rejection:
            verdicts.append(
                {
                    "proposal_id": proposal_id,
                    "symbol": symbol,
                    "side": side,
                    "quantity": proposal.get("quantity"),
                    "price": None,
                    "notional": None,
                    "status": "rejected",
                    "rule": rejection.rule,
                    "reason": rejection.reason,
                }
            )
            continue
        verdicts.append(
            {
                "proposal_id": proposal_id,
                "symbol": symbol,
                "side": side,
                "quantity": quantity,
                "price": as_text(price),
                "notional": as_text(notional),
                "status": "needs_approval" if rule == "approval_notional" else "approved",
                "rule": rule,
                "reason": reason,
            }
        )
        _reserve(facts, symbol, side, quantity, notional)
    return verdicts


def _reserve(facts: RiskFacts, symbol: str, side: str, quantity: int, notional: Decimal) -> None:
    sign = 1 if side == "buy" else -1
    facts.cash -= sign * notional
    facts.positions[symbol] = facts.positions.get(symbol, 0) + sign * quantity
    facts.fills_today += 1
