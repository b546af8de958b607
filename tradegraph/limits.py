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

    def as_json(self) -> dict[str, str | int | None]:
        """JSON form: money and percentages as decimal strings."""
        return {
            "max_position_pct": str(self.max_position_pct),
            "max_order_notional": str(self.max_order_notional),
            "max_trades_per_day": self.max_trades_per_day,
            "daily_loss_limit_pct": str(self.daily_loss_limit_pct),
            "approval_notional": None if self.approval_notional is None else str(self.approval_notional),
        }


LIMIT_FIELDS = tuple(RiskLimits.model_fields)
