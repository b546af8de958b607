"""Every risk rule rejects what it should, with its name and a reason (pure unit tests)."""

from decimal import Decimal

import pytest

from tradegraph.limits import RiskLimits
from tradegraph.risk import RiskFacts, evaluate


def facts(**overrides) -> RiskFacts:
    values = {
        "limits": RiskLimits(),
        "cash": Decimal("100000"),
        "positions": {"AAPL": 10},
        "prices": {"AAPL": Decimal("100"), "MSFT": Decimal("30"), "FB": None},
        "equity": Decimal("101000"),
        "day_open_equity": Decimal("101000"),
        "fills_today": 0,
    }
    values.update(overrides)
    return RiskFacts(**values)


def order(side="buy", symbol="AAPL", quantity=10, id="0:x"):
    return {"id": id, "side": side, "symbol": symbol, "quantity": quantity}


def verdict_of(proposal, **fact_overrides):
    [verdict] = evaluate([proposal], facts(**fact_overrides))
    return verdict


@pytest.mark.parametrize(
    ("proposal", "rule", "words"),
    [
        (order(quantity=-5), "quantity", "positive"),
        (order(quantity=0), "quantity", "positive"),
        (order(quantity=2.5), "quantity", "whole number"),
        (order(quantity="ten"), "quantity", "number of shares"),
        (order(quantity=10**12), "quantity", "maximum"),
        (order(quantity=True), "quantity", "number of shares"),
        (order(side="short"), "side", "buy or sell"),
        (order(symbol="TSLA"), "symbol", "not traded in this session"),
        (order(symbol="FB"), "price", "no price"),
        (order(side="sell", quantity=11), "no_short_selling", "10 held"),
        (order(side="sell", symbol="MSFT", quantity=1), "no_short_selling", "0 held"),
        (order(quantity=1001), "buying_power", "exceeds available cash"),
    ],
)
def test_rule_rejects_with_reason(proposal, rule, words):
    verdict = verdict_of(proposal)
    assert verdict["status"] == "rejected"
    assert verdict["rule"] == rule
    assert words in verdict["reason"]


def test_max_order_notional():
    verdict = verdict_of(
        order(quantity=200), limits=RiskLimits(max_order_notional=Decimal(10000), max_position_pct=100)
    )
    assert (verdict["status"], verdict["rule"]) == ("rejected", "max_order_notional")
    assert "20000.0000 exceeds the per-order limit 10000" in verdict["reason"]


def test_max_position_pct_counts_what_is_already_held():
    verdict = verdict_of(order(quantity=250))  # (10 + 250) * 100 = 26,000 of 101,000 equity = 25.74%
    assert (verdict["status"], verdict["rule"]) == ("rejected", "max_position_pct")
    assert "25.74%" in verdict["reason"]
    assert verdict_of(order(quantity=240))["status"] == "approved"  # 25,000 = 24.75%


def test_max_trades_per_day():
    verdict = verdict_of(order(quantity=1), fills_today=3, limits=RiskLimits(max_trades_per_day=3))
    assert (verdict["status"], verdict["rule"]) == ("rejected", "max_trades_per_day")


def test_daily_loss_limit_blocks_buys_but_not_sells():
    down = {"equity": Decimal("95000"), "day_open_equity": Decimal("100000")}
    buy = verdict_of(order(quantity=1), **down)
    assert (buy["status"], buy["rule"]) == ("rejected", "daily_loss_limit")
    assert "5.00%" in buy["reason"]
    assert verdict_of(order(side="sell", quantity=5), **down)["status"] == "approved"


def test_approval_threshold_pauses_instead_of_approving():
    verdict = verdict_of(order(quantity=60), limits=RiskLimits(approval_notional=Decimal(5000)))
    assert verdict["status"] == "needs_approval"
    assert verdict["rule"] == "approval_notional"
    assert verdict["notional"] == "6000.0000"


def test_orders_in_one_bar_reserve_cash_and_shares():
    two_sells = evaluate([order("sell", quantity=6, id="a"), order("sell", quantity=6, id="b")], facts())
    assert [v["status"] for v in two_sells] == ["approved", "rejected"]
    assert two_sells[1]["reason"] == "cannot sell 6 AAPL: 4 held and short selling is off"
    limits = RiskLimits(max_position_pct=100, max_order_notional=Decimal(10**6))
    buys = evaluate([order(quantity=600, id="a"), order(quantity=600, id="b")], facts(limits=limits))
    assert [v["status"] for v in buys] == ["approved", "rejected"]
    assert buys[1]["rule"] == "buying_power"


def test_approved_verdict_carries_exact_money():
    verdict = verdict_of(order(symbol="MSFT", quantity=3))
    assert verdict == {
        "proposal_id": "0:x",
        "symbol": "MSFT",
        "side": "buy",
        "quantity": 3,
        "price": "30.0000",
        "notional": "90.0000",
        "status": "approved",
        "rule": "all_checks",
        "reason": "passed every risk check",
        "order_type": "market",
        "time_in_force": "day",
        "limit_price": None,
        "stop_price": None,
        "trail_percent": None,
        "take_profit": None,
        "stop_loss": None,
        "stop_loss_limit": None,
        "intent": None,
    }


def test_shorts_need_shorting_margin_and_room_under_the_short_limit():
    from tradegraph.terms import Shorting

    on = Shorting(enabled=True)  # 50% initial margin
    # Selling 110 with 10 held opens a short of 100 at 100: margin 5000.
    assert verdict_of(order(side="sell", quantity=110), shorting=on)["status"] == "approved"
    poor = verdict_of(order(side="sell", quantity=110), shorting=on, cash=Decimal(4000))
    assert (poor["rule"], poor["reason"]) == (
        "margin",
        "shorting 100 AAPL needs initial margin 5000.0000, buying power is 4000.0000",
    )
    big = verdict_of(order(side="sell", quantity=610), shorting=on)  # a 60000 short is 59% of equity
    assert (big["rule"], big["reason"]) == (
        "max_short_exposure_pct",
        "shorts would be 59.41% of equity, above the 50% limit",
    )
    cover = verdict_of({**order(quantity=10), "intent": "cover"}, positions={"AAPL": -5})
    assert (cover["rule"], cover["reason"]) == ("intent", "cannot cover 10 AAPL: 5 held short")
    # Buying power leaves the shorts' margin alone: cash 100000 holds 50000 of shorts plus 50% margin.
    held_short = {
        "positions": {"AAPL": -500},
        "shorting": on,
        "limits": RiskLimits(max_position_pct=Decimal(100)),
    }
    assert verdict_of(order(symbol="MSFT", quantity=1000), **held_short)["reason"] == (
        "notional 30000.0000 exceeds buying power 25000.0000 (cash 100000 less short margin)"
    )


def test_open_orders_cancellations_and_exposure_limits():
    limits = RiskLimits(max_open_orders=1)
    limit = {**order(quantity=1), "order_type": "limit", "limit_price": 99}
    two = evaluate([{**limit, "id": "a"}, {**limit, "id": "b"}], facts(limits=limits))
    assert [(v["status"], v["rule"]) for v in two] == [
        ("approved", "all_checks"),
        ("rejected", "max_open_orders"),
    ]
    unknown = verdict_of({**order(), "cancel_order_id": 7}, open_order_ids=[3])
    assert (unknown["status"], unknown["reason"]) == ("rejected", "order 7 is not one of your open orders")
    assert verdict_of({**order(), "cancel_order_id": 3}, open_order_ids=[3])["status"] == "approved"
    gross = RiskLimits(max_gross_exposure_pct=Decimal(10), max_position_pct=Decimal(100))
    too_much = verdict_of(order(quantity=100), limits=gross)  # 110 shares at 100 is 10.89% of equity
    assert (too_much["rule"], too_much["reason"]) == (
        "max_gross_exposure_pct",
        "gross exposure would be 10.89% of equity, above the 10% limit",
    )
