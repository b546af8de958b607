"""A bot's trading terms besides its risk limits: shorting and margin, costs, fills, and brackets.

Each is a small validated model stored as JSON on the bot (NULL means the defaults: no shorting,
no costs, fills up to 10% of a bar's volume, no automatic brackets). Sessions read them when a
bar is executed, like the risk limits.
"""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tradegraph.money import LEDGER_STEP, to_money

BPS = Decimal(10_000)
HUNDRED = Decimal(100)
DAYS_PER_YEAR = 360
"""Brokers accrue borrow fees per calendar day over a 360-day year."""


class Terms(BaseModel):
    """Common settings: unknown keys are refused, JSON money and percentages are decimal strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_json(self) -> dict[str, Any]:
        """JSON form: decimals as strings, booleans as they are."""
        return {k: v if isinstance(v, bool) else str(v) for k, v in self.model_dump().items()}


class Shorting(Terms):
    """Short selling on margin; off unless enabled."""

    enabled: bool = False
    """Selling more than is held opens a short position."""

    borrow_rate_pct: Decimal = Field(default=Decimal(3), ge=0, le=100, decimal_places=4)
    """Yearly fee on the short market value, charged for each calendar day a short is held overnight."""

    initial_margin_pct: Decimal = Field(default=Decimal(50), gt=0, le=100, decimal_places=4)
    """Buying power a new short takes, as a percentage of its notional (Reg T: 50%)."""

    maintenance_margin_pct: Decimal = Field(default=Decimal(30), gt=0, le=100, decimal_places=4)
    """Equity must stay above this percentage of the short market value, or shorts are covered."""

    def borrow_fee(self, *, quantity: int, price: Decimal, days: int) -> Decimal:
        """The fee for holding `quantity` shares short at `price` for `days` calendar days."""
        return to_money(abs(quantity) * price * self.borrow_rate_pct / HUNDRED * days / DAYS_PER_YEAR)


class Costs(Terms):
    """Commissions and slippage charged on every fill; all zero by default."""

    commission_per_share: Decimal = Field(default=Decimal(0), ge=0, le=100, decimal_places=4)
    commission_min: Decimal = Field(default=Decimal(0), ge=0, le=10_000, decimal_places=4)
    """Least commission of one fill (applies when the others come to less)."""
    commission_pct: Decimal = Field(default=Decimal(0), ge=0, le=10, decimal_places=4)
    """Commission as a percentage of the fill's notional."""
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0, le=1000, decimal_places=4)
    """Market and stop fills are this many basis points worse than the price they are based on."""

    def commission(self, *, quantity: int, price: Decimal) -> Decimal:
        """Commission of one fill: per share plus percentage of notional, at least the minimum."""
        charged = self.commission_per_share * quantity + price * quantity * self.commission_pct / HUNDRED
        return to_money(max(charged, self.commission_min))

    def slipped(self, price: Decimal, side: str) -> Decimal:
        """A market or stop fill's price after slippage: higher for buys, lower for sells."""
        factor = 1 + self.slippage_bps / BPS if side == "buy" else 1 - self.slippage_bps / BPS
        return (price * factor).quantize(LEDGER_STEP, ROUND_HALF_EVEN)


class Execution(Terms):
    """How fills are simulated."""

    max_volume_pct: Decimal = Field(default=Decimal(10), gt=0, le=100, decimal_places=4)
    """A fill takes at most this share of the bar's volume; the rest of the order stays open."""

    def fill_cap(self, volume: int) -> int:
        """Most shares one bar can fill (at least one share when the bar traded at all)."""
        if volume <= 0:
            return 0
        return max(1, int(volume * self.max_volume_pct / HUNDRED))


class Strategy(Terms):
    """Settings of the `rule` decider: bracket exits on its entries, as percentages of the entry price."""

    take_profit_pct: Decimal | None = Field(default=None, gt=0, le=1000, decimal_places=4)
    stop_loss_pct: Decimal | None = Field(default=None, gt=0, lt=100, decimal_places=4)

    def as_json(self) -> dict[str, Any]:
        return {k: None if v is None else str(v) for k, v in self.model_dump().items()}


TERM_TYPES: dict[str, type[Terms]] = {
    "shorting": Shorting,
    "costs": Costs,
    "execution": Execution,
    "strategy": Strategy,
}
"""The bot's JSON columns and their models."""
