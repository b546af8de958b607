"""The `rule` strategy's moving-average crossover, on close series built and averaged by hand."""

from decimal import Decimal

from tradegraph.crossover import FAST, SLOW, crossover_proposals

# 15 closes at 100, then 5 at 110: SMA5 = 110, SMA20 = (15 x 100 + 5 x 110) / 20 = 102.5 -> uptrend.
RISING = [Decimal(100)] * 15 + [Decimal(110)] * 5
# 15 closes at 100, then 5 at 90: SMA5 = 90, SMA20 = 97.5 -> downtrend.
FALLING = [Decimal(100)] * 15 + [Decimal(90)] * 5


def test_the_windows_are_five_and_twenty_bars() -> None:
    assert (FAST, SLOW) == (5, 20)


def test_an_uptrend_with_nothing_held_buys_a_tenth_of_equity() -> None:
    proposals, notes = crossover_proposals(
        bar_index=7, closes={"AAPL": RISING}, positions={}, equity=Decimal("100000")
    )
    # 10% of 100,000 is 10,000; at the last close of 110 that is 90.9 -> 90 whole shares.
    assert proposals == [
        {
            "id": "7:rule:AAPL",
            "symbol": "AAPL",
            "side": "buy",
            "quantity": 90,
            "source": "rule",
            "note": "AAPL: SMA5 110.00 vs SMA20 102.50",
        }
    ]
    assert notes == ["AAPL: SMA5 110.00 vs SMA20 102.50: uptrend, buy 90"]


def test_a_downtrend_sells_everything_held() -> None:
    proposals, notes = crossover_proposals(
        bar_index=3, closes={"MSFT": FALLING}, positions={"MSFT": 42}, equity=Decimal("50000")
    )
    assert [(p["side"], p["quantity"], p["id"]) for p in proposals] == [("sell", 42, "3:rule:MSFT")]
    assert notes == ["MSFT: SMA5 90.00 vs SMA20 97.50: downtrend, sell 42"]


def test_holding_in_an_uptrend_and_short_histories_propose_nothing() -> None:
    proposals, notes = crossover_proposals(
        bar_index=1,
        closes={"AAPL": RISING, "IBM": [Decimal(100)] * 19},
        positions={"AAPL": 5},
        equity=Decimal("100000"),
    )
    assert proposals == []
    assert notes == ["AAPL: SMA5 110.00 vs SMA20 102.50: hold", "IBM: 19 bars, need 20"]


def test_a_tenth_of_equity_below_one_share_proposes_nothing() -> None:
    proposals, notes = crossover_proposals(
        bar_index=0, closes={"AAPL": RISING}, positions={}, equity=Decimal("1000")
    )
    # 10% of 1,000 = 100 < one share at 110.
    assert proposals == []
    assert notes == ["AAPL: SMA5 110.00 vs SMA20 102.50: hold"]
