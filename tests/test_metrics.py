"""Performance figures against values computed by hand: max drawdown, Sharpe, returns, buy-and-hold."""

import math
import statistics
from decimal import Decimal

import pytest

from tradegraph.metrics import PERIODS_PER_YEAR, max_drawdown, performance, sharpe_ratio


def curve(*values: str) -> list[Decimal]:
    return [Decimal(v) for v in values]


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    # Peaks and troughs: 100 -> 90 is a 10% fall; 120 -> 84 is 36 / 120 = 30%, the larger.
    assert max_drawdown(curve("100", "90", "120", "84", "110")) == pytest.approx(0.30)
    assert max_drawdown(curve("100", "101", "102", "150")) == 0.0
    # Recovering above the old peak does not erase the fall before it: 200 -> 150 is 25%.
    assert max_drawdown(curve("200", "150", "250", "240")) == pytest.approx(0.25)


def test_sharpe_is_the_annualised_mean_over_the_sample_deviation_of_returns() -> None:
    # Returns by hand: 110/100 - 1 = 0.10, 99/110 - 1 = -0.10, 108.9/99 - 1 = 0.10.
    returns = [0.10, -0.10, 0.10]
    mean = sum(returns) / 3  # 0.0333...
    deviation = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)  # sample: divide by n - 1
    assert deviation == pytest.approx(statistics.stdev(returns))
    expected = mean / deviation * math.sqrt(252)
    assert sharpe_ratio(curve("100", "110", "99", "108.9"), 252) == pytest.approx(expected)
    assert expected == pytest.approx((1 / 30) / math.sqrt(4 / 300) * math.sqrt(252))


def test_sharpe_needs_two_returns_and_some_variance() -> None:
    assert sharpe_ratio(curve("100", "110"), 252) is None
    assert sharpe_ratio(curve("100", "110", "121"), 252) is None  # +10% twice: no variance


def test_performance_of_a_session() -> None:
    figures = performance(
        start_equity=Decimal("100000"),
        equity=curve("101000", "99000", "103000"),
        benchmark=curve("100500", "100200", "98000"),
        trades=4,
        mode="daily",
    )
    assert figures.start_equity == "100000" and figures.end_equity == "103000"
    assert figures.total_return == pytest.approx(0.03)  # 103000 / 100000 - 1
    assert figures.buy_and_hold_return == pytest.approx(-0.02)  # the last benchmark value, 98000
    assert figures.bars == 3 and figures.trades == 4
    # From 101000 down to 99000: 2000 / 101000.
    assert figures.max_drawdown == pytest.approx(2000 / 101000)


def test_intraday_sharpe_is_annualised_over_390_bars_a_day() -> None:
    equity = curve("100500", "99800", "101200", "100900")
    daily = performance(start_equity=Decimal(100000), equity=equity, benchmark=[], trades=0, mode="daily")
    intraday = performance(
        start_equity=Decimal(100000), equity=equity, benchmark=[], trades=0, mode="intraday"
    )
    assert PERIODS_PER_YEAR["intraday"] == 252 * 390
    assert daily.sharpe is not None and intraday.sharpe is not None
    assert intraday.sharpe == pytest.approx(daily.sharpe * math.sqrt(390))
    assert daily.buy_and_hold_return == 0.0, "no benchmark marks: buy-and-hold stayed at the start"
