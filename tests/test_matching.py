"""The matching rules alone (pure): how one later bar treats each kind of resting order."""

from datetime import date, datetime
from decimal import Decimal

from tradegraph.market.bar import Bar
from tradegraph.matching import RestingOrder, evaluate
from tradegraph.risk import Rejection, order_spec

D = Decimal


def bar(o: str, h: str, low: str, c: str, volume: int = 1_000_000, day: int = 2) -> Bar:
    return Bar("X", datetime(2021, 3, day, 16), D(o), D(h), D(low), D(c), volume)


def order(**terms) -> RestingOrder:
    base = {
        "id": 1,
        "client_order_id": "t:1:0:0",
        "symbol": "X",
        "side": "buy",
        "order_type": "limit",
        "time_in_force": "gtc",
        "quantity": 100,
        "filled_quantity": 0,
    }
    return RestingOrder(**{**base, **terms})


def test_a_stop_limit_triggers_then_rests_as_a_limit_when_the_gap_passes_its_limit():
    stop_limit = order(side="sell", order_type="stop_limit", stop_price=D(95), limit_price=D(94))
    gapped = evaluate(stop_limit, bar("92", "93", "91", "92"), cap=1000)
    assert (gapped.fills, gapped.triggered) == (False, True)
    assert (
        gapped.reason == "stop 95 reached (low 91) (gapped through it at the open); "
        "limit 94 not reached, resting as a limit order"
    )
    resting = order(side="sell", order_type="stop_limit", stop_price=D(95), limit_price=D(94), triggered=True)
    later = evaluate(resting, bar("93", "96", "92", "95", day=3), cap=1000)
    assert (later.price, later.quantity, later.slips) == (D(94), 100, False)  # the better of open 93 and 94


def test_a_stop_limit_that_triggers_within_its_limit_fills_at_the_trigger():
    stop_limit = order(side="buy", order_type="stop_limit", stop_price=D(105), limit_price=D(106))
    hit = evaluate(stop_limit, bar("103", "107", "102", "106"), cap=1000)
    assert (hit.price, hit.triggered, hit.slips) == (D(105), True, False)


def test_a_buy_trailing_stop_follows_the_low_and_a_buy_stop_slips():
    trailing = order(side="buy", order_type="trailing_stop", trail_percent=D(10), trail_anchor=D(100))
    lower = evaluate(trailing, bar("98", "99", "90", "91"), cap=1000)
    assert (lower.fills, lower.trail_anchor) == (False, D(90))  # stop 110 not reached; the low moves to 90
    stop = order(side="buy", order_type="stop", stop_price=D(105))
    assert evaluate(stop, bar("106", "108", "104", "107"), cap=1000).price == D(106)  # gapped above the stop


def test_the_volume_cap_and_a_bar_without_volume():
    limit = order(limit_price=D(101))
    partial = evaluate(limit, bar("100", "101", "99", "100"), cap=40)
    assert (partial.price, partial.quantity) == (D(100), 40)
    assert "40 of 100 filled (volume cap 40 shares)" in str(partial.reason)
    assert not evaluate(limit, bar("100", "101", "99", "100", volume=0), cap=0).fills


def test_a_day_order_expires_on_a_later_day_even_when_the_price_is_reached():
    day_order = order(time_in_force="day", good_for=date(2021, 3, 2), limit_price=D(101))
    assert evaluate(day_order, bar("100", "101", "99", "100", day=3), cap=1000).expired


def test_order_terms_are_checked_before_anything_is_placed():
    def rejected(side: str, **terms) -> str:
        try:
            order_spec(
                {"id": "p", "symbol": "X", "side": side, "quantity": 1, "source": "t", "note": "", **terms},
                side,
                D(100),
                D(20),
            )
        except Rejection as rejection:
            return f"{rejection.rule}: {rejection.reason}"
        return "accepted"

    assert rejected("buy", order_type="limit") == "order_terms: a limit order needs limit_price"
    assert rejected("buy", order_type="iceberg").startswith("order_terms: order_type must be one of market")
    assert rejected("buy", order_type="limit", limit_price=50).startswith(
        "price_band: limit_price 50 is more than 20%"
    )
    assert rejected("sell", order_type="stop", stop_price=101).startswith(
        "order_terms: a sell stop must be below"
    )
    assert rejected("buy", take_profit=99) == "order_terms: take_profit 99 must be above the entry 100"
    assert rejected("buy", order_type="limit", limit_price="99.12345").startswith(
        "order_terms: limit_price has more than 4"
    )
    assert rejected("buy", order_type="trailing_stop", trail_percent=5, time_in_force="gtc") == "accepted"
