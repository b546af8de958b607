"""Exposure, buying power and the maintenance check of an account that may hold shorts. Pure.

Longs are paid for in full (no margin loans); shorts are held on margin. A short sale credits its
proceeds to cash, and the account keeps `initial_margin_pct` of every short's value in reserve:
    equity        = cash + long value - short value
    buying power  = cash - short value x (1 + initial margin)
A buy (of a long) needs its notional in buying power; a new short needs its initial margin. When
equity falls below `maintenance_margin_pct` of the short value, the shorts are covered.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from tradegraph.terms import HUNDRED, Shorting


@dataclass(frozen=True)
class Exposure:
    """Market value of longs and of shorts (a positive number), at one set of prices."""

    long_value: Decimal
    short_value: Decimal

    @property
    def gross(self) -> Decimal:
        return self.long_value + self.short_value

    @property
    def net(self) -> Decimal:
        return self.long_value - self.short_value


def exposure(positions: Mapping[str, int], prices: Mapping[str, Decimal | None]) -> Exposure:
    """Long and short market value; positions without a price count at zero."""
    long_value = short_value = Decimal(0)
    for symbol, quantity in positions.items():
        price = prices.get(symbol)
        if price is None:
            continue
        if quantity > 0:
            long_value += quantity * price
        else:
            short_value -= quantity * price
    return Exposure(long_value, short_value)


def buying_power(cash: Decimal, held: Exposure, shorting: Shorting) -> Decimal:
    """Cash not needed to back the shorts."""
    return cash - held.short_value * (1 + shorting.initial_margin_pct / HUNDRED)


def maintenance_shortfall(equity: Decimal, held: Exposure, shorting: Shorting) -> Decimal | None:
    """How far equity is below the maintenance requirement, or None when it is not."""
    required = held.short_value * shorting.maintenance_margin_pct / HUNDRED
    return required - equity if held.short_value > 0 and equity < required else None
