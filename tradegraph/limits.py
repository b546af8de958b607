"""Per-model risk limits, with the defaults a new model gets."""

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class RiskLimits(BaseModel):
    """What `risk_check` enforces for one model. Percentages are 0-100."""

    model_config = ConfigDict(extra="forbid")

    max_position_pct: Decimal = Field(default=Decimal(25), gt=0, le=100)
    """Largest share of equity one symbol may hold after a buy, in percent."""

    max_order_notional: Decimal = Field(default=Decimal(50_000), gt=0, le=Decimal("1e12"))
    """Largest notional (quantity x price) of a single order."""

    max_trades_per_day: int = Field(default=20, ge=0, le=100_000)
    """Fills allowed per trading day across the model's sessions."""

    daily_loss_limit_pct: Decimal = Field(default=Decimal(5), gt=0, le=100)
    """Once equity is this far below the day's first mark, new buys are refused."""

    approval_notional: Decimal | None = Field(default=None, gt=0, le=Decimal("1e12"))
    """Orders with a larger notional pause for human approval; None means never."""

    max_gross_exposure_pct: Decimal = Field(default=Decimal(200), gt=0, le=1000)
    """Longs plus shorts, at market, as a percentage of equity, after an order that adds to them."""

    max_net_exposure_pct: Decimal = Field(default=Decimal(100), gt=0, le=1000)
    """|Longs minus shorts| as a percentage of equity, after an order that moves it away from zero."""

    max_short_exposure_pct: Decimal = Field(default=Decimal(50), ge=0, le=1000)
    """Shorts at market as a percentage of equity, after a new short."""

    max_open_orders: int = Field(default=20, ge=0, le=10_000)
    """Orders resting in the book at once (limit, stop and trailing orders, and bracket exits)."""

    price_band_pct: Decimal = Field(default=Decimal(20), gt=0, le=100)
    """A limit or stop price further than this from the last close is refused as a likely mistake."""

    def as_json(self) -> dict[str, str | int | None]:
        """JSON form: money and percentages as decimal strings, counts as numbers."""
        return {
            key: value if value is None or isinstance(value, int) else str(value)
            for key, value in self.model_dump().items()
        }


LIMIT_FIELDS = tuple(RiskLimits.model_fields)
