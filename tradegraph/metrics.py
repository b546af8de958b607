"""Performance of an equity curve: total return, Sharpe, max drawdown, and buy-and-hold beside it."""

import math
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

PERIODS_PER_YEAR = {"daily": 252, "intraday": 252 * 390}


@dataclass(frozen=True)
class Performance:
    """Summary figures; returns and drawdown are fractions (0.05 is 5%)."""

    start_equity: str
    end_equity: str
    total_return: float
    sharpe: float | None
    max_drawdown: float
    trades: int
    buy_and_hold_return: float
    bars: int
    costs_paid: str = "0"
    """Commissions, slippage and borrow fees the curve paid (money)."""
    gross_return: float = 0.0
    """What the total return would have been without those costs; `total_return` is net of them."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def max_drawdown(curve: list[Decimal]) -> float:
    """Largest peak-to-trough fall, as a fraction of the peak."""
    peak, worst = Decimal(0), 0.0
    for value in curve:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, float((peak - value) / peak))
    return worst


def sharpe_ratio(curve: list[Decimal], periods_per_year: int) -> float | None:
    """Annualised mean over standard deviation of per-bar returns (risk-free rate 0)."""
    returns = [float(b / a - 1) for a, b in zip(curve, curve[1:], strict=False) if a > 0]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance == 0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(periods_per_year)


def performance(
    *,
    start_equity: Decimal,
    equity: list[Decimal],
    benchmark: list[Decimal],
    trades: int,
    mode: str,
    costs: Decimal = Decimal(0),
) -> Performance:
    """Figures for a curve that started at `start_equity` and paid `costs` along the way."""
    curve = [start_equity, *equity]
    end = curve[-1]
    bench_end = benchmark[-1] if benchmark else start_equity
    return Performance(
        start_equity=str(start_equity),
        end_equity=str(end),
        total_return=float(end / start_equity - 1) if start_equity else 0.0,
        sharpe=sharpe_ratio(curve, PERIODS_PER_YEAR.get(mode, 252)),
        max_drawdown=max_drawdown(curve),
        trades=trades,
        buy_and_hold_return=float(bench_end / start_equity - 1) if start_equity else 0.0,
        bars=len(equity),
        costs_paid=str(costs),
        gross_return=float((end + costs) / start_equity - 1) if start_equity else 0.0,
    )
