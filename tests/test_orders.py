"""The order lifecycle on a real Postgres, each case checked against figures worked out by hand.

Every case trades its own made-up symbol over six trading days (Mon 2021-03-01 .. Mon 2021-03-08)
whose bars are chosen so the expected fills can be computed on paper. A scripted decider places
the orders through the real tools at given bars; risk_check, execute and the ledger do the rest.
"""

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from psycopg_pool import AsyncConnectionPool

from graph.context import SessionContext
from tests.support.databases import fresh_database
from tests.support.fake_chat import ScriptedChatModel, tool_call
from tests.support.ledger_checks import assert_reconciles
from tests.support.sessions import events, run_session, state_of
from tradegraph.accounts import BotTerms, create_model, create_user
from tradegraph.database import make_pool
from tradegraph.limits import RiskLimits
from tradegraph.reports import session_performance
from tradegraph.terms import Costs, Execution, Shorting

DAYS = [date(2021, 3, d) for d in (1, 2, 3, 4, 5, 8)]
FLAT = (100, 101, 99, 100)
BARS: dict[str, list[tuple[float, float, float, float] | tuple[float, float, float, float, int]]] = {
    # open, high, low, close[, volume]
    "LMTB": [
        FLAT,
        (99, 100, 97, 98),
        (97, 98, 96, 96.5),
        (96, 97, 94, 95.5),
        (96, 97, 95, 96),
        (96, 97, 95, 96),
    ],
    "STPG": [FLAT, (98, 99, 96, 97), (92, 93, 90, 91), (91, 92, 90, 91), (91, 92, 90, 91), (91, 92, 90, 91)],
    "TRLS": [
        FLAT,
        (101, 104, 100, 103),
        (104, 110, 103, 109),
        (108, 109, 104, 105),
        (105, 106, 104, 105),
        (105, 106, 104, 105),
    ],
    "BRKT": [
        FLAT,
        (101, 103, 99, 102),
        (103, 107, 102, 106.5),
        (106, 107, 105, 106),
        (106, 107, 105, 106),
        (106, 107, 105, 106),
    ],
    "DAYX": [FLAT, (99, 100, 95, 96), (96, 97, 89, 90), (90, 91, 89, 90), (90, 91, 89, 90), (90, 91, 89, 90)],
    "PRTL": [
        (100, 101, 99, 100, 500),
        (101, 102, 100, 101, 1000),
        (101, 102, 100, 101),
        (101, 102, 100, 101),
        (101, 102, 100, 101),
        (101, 102, 100, 101),
    ],
    "SHRT": [(c, c + 1, c - 1, c) for c in (100, 102, 101, 99, 98, 97)],
    "MRGN": [
        (50, 51, 49, 50),
        (60, 100, 59, 100),
        (101, 102, 100, 101),
        (101, 102, 100, 101),
        (101, 102, 100, 101),
        (101, 102, 100, 101),
    ],
    "COST": [
        FLAT,
        (110, 111, 109, 110),
        (110, 111, 109, 110),
        (110, 111, 109, 110),
        (110, 111, 109, 110),
        (110, 111, 109, 110),
    ],
}
VOLUME = 1_000_000
ORDER_ROWS = "SELECT * FROM orders WHERE model_id = %s ORDER BY id"
FILL_ROWS = (
    "SELECT bar_time, side, quantity, price, commission, slippage FROM fills WHERE model_id = %s ORDER BY id"
)
FEE_ROWS = "SELECT bar_time, days, price, amount FROM borrow_fees WHERE model_id = %s ORDER BY id"
EVENT_STATUSES = "SELECT status, reason FROM order_events WHERE order_id = %s ORDER BY id"


def at_close(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time()).replace(hour=16)


@pytest.fixture(scope="module")
def book_url() -> Iterator[str]:
    """A database of this module's own, with the made-up symbols' bars."""
    with fresh_database("tradegraph_orders") as url:
        yield url


@pytest.fixture(scope="module")
async def book(book_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = make_pool(book_url, max_size=10)
    await pool.open()
    async with pool.connection() as conn:
        for symbol, bars in BARS.items():
            for day, bar in zip(DAYS, bars, strict=True):
                o, h, low, c = bar[:4]
                volume = bar[4] if len(bar) > 4 else VOLUME  # type: ignore[misc]
                await conn.execute(
                    "INSERT INTO daily_bars (symbol, day, open, high, low, close, volume) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        symbol,
                        day,
                        Decimal(str(o)),
                        Decimal(str(h)),
                        Decimal(str(low)),
                        Decimal(str(c)),
                        volume,
                    ),
                )
    yield pool
    await pool.close()


def scripted(plan: dict[int, list[tuple[str, dict[str, Any]]]]) -> ScriptedChatModel:
    """A decider that makes the given tool calls at the given bars (1-based) and holds otherwise."""

    def reply(messages: list[BaseMessage]) -> AIMessage:
        if messages[-1].type == "tool":
            return AIMessage("done for this bar")
        prompt = next(str(m.content) for m in reversed(messages) if m.type == "human")
        match = re.search(r"\(bar (\d+) of", prompt)
        assert match is not None
        bar = int(match.group(1))
        calls = plan.get(bar, [])
        if not calls:
            return AIMessage("hold")
        return AIMessage("", tool_calls=[tool_call(n, a, f"b{bar}c{i}") for i, (n, a) in enumerate(calls)])

    return ScriptedChatModel(replies=[reply])


async def bot(
    pool: AsyncConnectionPool, *, cash: str = "100000", terms: BotTerms | None = None, **limits: Any
):
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"orders-{uuid.uuid4().hex[:8]}")
        return await create_model(
            conn,
            user_id=user.id,
            name="order bot",
            signature=f"ord-{uuid.uuid4().hex[:8]}",
            initial_cash=Decimal(cash),
            limits=RiskLimits(**limits),
            terms=terms,
        )


async def trade(pool: AsyncConnectionPool, model: dict[str, Any], symbol: str, plan: dict[int, list[Any]]):
    """Run the six-day session; returns the stream parts, the orders, the fills and the final state."""
    payload = {
        "model_id": model["id"],
        "signature": model["signature"],
        "mode": "daily",
        "start": DAYS[0].isoformat(),
        "end": DAYS[-1].isoformat(),
        "symbols": [symbol],
        "decider": "llm",
    }
    context = SessionContext(pool=pool, chat_model=scripted(plan))
    thread_id, parts = await run_session(pool, payload, context=context)
    state = (await state_of(pool, thread_id)).values
    assert state["done"], "the session ran to its last bar"
    async with pool.connection() as conn:
        orders = [dict(r) for r in await (await conn.execute(ORDER_ROWS, (model["id"],))).fetchall()]
        fills = [dict(r) for r in await (await conn.execute(FILL_ROWS, (model["id"],))).fetchall()]
    ledger = await assert_reconciles(pool, model["id"])
    assert state["portfolio"]["cash"] == str(ledger["cash"])
    return parts, orders, fills, ledger


def fill_summary(fills: list[dict[str, Any]]) -> list[tuple[date, str, int, Decimal]]:
    return [(f["bar_time"].date(), f["side"], f["quantity"], f["price"]) for f in fills]


async def history(pool: AsyncConnectionPool, order_id: int) -> list[tuple[str, str]]:
    """Every status change of an order: (status, reason), oldest first."""
    async with pool.connection() as conn:
        return [
            (r["status"], r["reason"])
            for r in await (await conn.execute(EVENT_STATUSES, (order_id,))).fetchall()
        ]


async def statuses(pool: AsyncConnectionPool, order_id: int) -> list[str]:
    return [status for status, _ in await history(pool, order_id)]


async def test_a_limit_buy_rests_and_fills_three_bars_later_at_the_limit(book):
    model = await bot(book)
    plan = {
        1: [
            (
                "buy",
                {
                    "symbol": "LMTB",
                    "quantity": 100,
                    "order_type": "limit",
                    "limit_price": 95,
                    "time_in_force": "gtc",
                },
            )
        ]
    }
    parts, orders, fills, ledger = await trade(book, model, "LMTB", plan)
    # Lows 97 and 96 stay above 95; the fourth bar trades down to 94 from an open of 96: filled at 95.
    assert fill_summary(fills) == [(DAYS[3], "buy", 100, Decimal("95.0000"))]
    [order] = orders
    assert (order["order_type"], order["status"], order["filled_quantity"]) == ("limit", "filled", 100)
    assert await statuses(book, order["id"]) == ["open", "filled"]
    assert ledger == {"cash": Decimal("90500.0000"), "positions": {"LMTB": 100}}
    placed = events(parts, "order")[0]
    assert (placed["status"], placed["order_type"], placed["clock"]) == (
        "open",
        "limit",
        at_close(DAYS[0]).isoformat(),
    )
    filled = [e for e in events(parts, "fill") if e["status"] == "filled"]
    assert [(e["clock"], e["price"]) for e in filled] == [(at_close(DAYS[3]).isoformat(), "95.0000")]


async def test_a_stop_sell_triggered_by_a_gap_down_fills_at_the_open(book):
    model = await bot(book)
    plan = {
        1: [
            ("buy", {"symbol": "STPG", "quantity": 100}),
            (
                "sell",
                {
                    "symbol": "STPG",
                    "quantity": 100,
                    "order_type": "stop",
                    "stop_price": 95,
                    "time_in_force": "gtc",
                },
            ),
        ]
    }
    _, orders, fills, ledger = await trade(book, model, "STPG", plan)
    # Day 2's low 96 stays above the stop; day 3 opens at 92, below it: the fill is the open, not 95.
    assert fill_summary(fills) == [
        (DAYS[0], "buy", 100, Decimal("100.0000")),
        (DAYS[2], "sell", 100, Decimal("92.0000")),
    ]
    assert "gapped through it at the open" in orders[1]["reason"]
    assert ledger == {"cash": Decimal("99200.0000"), "positions": {}}


async def test_a_trailing_stop_follows_the_high_water_mark(book):
    model = await bot(book)
    plan = {
        1: [
            ("buy", {"symbol": "TRLS", "quantity": 100}),
            (
                "sell",
                {
                    "symbol": "TRLS",
                    "quantity": 100,
                    "order_type": "trailing_stop",
                    "trail_percent": 5,
                    "time_in_force": "gtc",
                },
            ),
        ]
    }
    _, orders, fills, ledger = await trade(book, model, "TRLS", plan)
    # Marks: 100 (placed) -> stop 95, day 2 low 100: no; mark 104 -> stop 98.80, day 3 low 103: no;
    # mark 110 -> stop 104.50, day 4 low 104: triggered, open 108 is above it, so filled at 104.50.
    assert fill_summary(fills)[1] == (DAYS[3], "sell", 100, Decimal("104.5000"))
    assert orders[1]["trail_anchor"] == Decimal("110.0000")
    assert "from the high 110" in orders[1]["reason"]
    assert ledger == {"cash": Decimal("100450.0000"), "positions": {}}


async def test_a_bracket_whose_take_profit_fills_cancels_its_stop_loss(book):
    model = await bot(book)
    plan = {1: [("buy", {"symbol": "BRKT", "quantity": 100, "take_profit": 106, "stop_loss": 96})]}
    parts, orders, fills, ledger = await trade(book, model, "BRKT", plan)
    entry, take_profit, stop_loss = orders
    assert (take_profit["leg"], take_profit["order_type"], take_profit["limit_price"]) == (
        "take_profit",
        "limit",
        Decimal("106.0000"),
    )
    assert (stop_loss["leg"], stop_loss["order_type"], stop_loss["stop_price"]) == (
        "stop_loss",
        "stop",
        Decimal("96.0000"),
    )
    assert take_profit["parent_id"] == stop_loss["parent_id"] == entry["id"]
    # Day 2's high 103 is short of 106 and its low 99 above 96; day 3 reaches 107 from an open of 103.
    assert fill_summary(fills) == [
        (DAYS[0], "buy", 100, Decimal("100.0000")),
        (DAYS[2], "sell", 100, Decimal("106.0000")),
    ]
    assert (take_profit["status"], stop_loss["status"]) == ("filled", "cancelled")
    assert stop_loss["reason"] == "one-cancels-other: the take_profit exit filled"
    assert await statuses(book, stop_loss["id"]) == ["open", "cancelled"]
    assert ledger == {"cash": Decimal("100600.0000"), "positions": {}}


async def test_a_day_order_expires_after_its_day(book):
    model = await bot(book)
    plan = {1: [("buy", {"symbol": "DAYX", "quantity": 100, "order_type": "limit", "limit_price": 90})]}
    parts, orders, fills, ledger = await trade(book, model, "DAYX", plan)
    # Placed at day 1's close, it is good for day 2 (low 95: no fill). Day 3 trades at 89, but the
    # order expired after day 2's last bar, so nothing fills.
    [order] = orders
    assert (order["status"], order["good_for"]) == ("expired", DAYS[1])
    assert order["reason"] == "day order expired after the last bar of 2021-03-02"
    assert fills == []
    assert ledger == {"cash": Decimal("100000.0000"), "positions": {}}
    assert [e["status"] for e in events(parts, "order")] == ["open", "expired"]


async def test_a_partial_fill_completes_at_the_next_bar(book):
    model = await bot(book, terms=BotTerms(execution=Execution(max_volume_pct=Decimal(10))))
    plan = {1: [("buy", {"symbol": "PRTL", "quantity": 80})]}
    _, orders, fills, ledger = await trade(book, model, "PRTL", plan)
    # Day 1 traded 500 shares: 10% is 50, at the close 100. The other 30 fill at day 2's open, 101.
    assert fill_summary(fills) == [
        (DAYS[0], "buy", 50, Decimal("100.0000")),
        (DAYS[1], "buy", 30, Decimal("101.0000")),
    ]
    assert await statuses(book, orders[0]["id"]) == ["open", "partially_filled", "filled"]
    assert ledger == {"cash": Decimal("91970.0000"), "positions": {"PRTL": 80}}


async def test_a_short_pays_a_week_of_borrow_fees_and_is_covered(book):
    shorting = Shorting(enabled=True, borrow_rate_pct=Decimal("3.6"))
    model = await bot(book, terms=BotTerms(shorting=shorting))
    plan = {
        1: [("short", {"symbol": "SHRT", "quantity": 100})],
        6: [("cover", {"symbol": "SHRT", "quantity": 100})],
    }
    parts, orders, fills, ledger = await trade(book, model, "SHRT", plan)
    async with book.connection() as conn:
        fees = [dict(r) for r in await (await conn.execute(FEE_ROWS, (model["id"],))).fetchall()]
    # 3.6% a year over 360 days is 0.01% a day of the short's value at the last close; Friday to
    # Monday is three days.
    assert [(f["bar_time"].date(), f["days"], f["price"], f["amount"]) for f in fees] == [
        (DAYS[1], 1, Decimal("100.0000"), Decimal("1.0000")),
        (DAYS[2], 1, Decimal("102.0000"), Decimal("1.0200")),
        (DAYS[3], 1, Decimal("101.0000"), Decimal("1.0100")),
        (DAYS[4], 1, Decimal("99.0000"), Decimal("0.9900")),
        (DAYS[5], 3, Decimal("98.0000"), Decimal("2.9400")),
    ]
    assert fill_summary(fills) == [
        (DAYS[0], "sell", 100, Decimal("100.0000")),
        (DAYS[5], "buy", 100, Decimal("97.0000")),
    ]
    assert ledger == {"cash": Decimal("100293.0400"), "positions": {}}  # 100000 + 10000 - 9700 - 6.96
    marks = events(parts, "equity")
    assert marks[1]["equity"] == "99799.0000"  # cash 110000 - 1.00 fee, short 100 x 102
    assert len(events(parts, "fee")) == 5


async def test_a_margin_call_covers_a_short_at_the_next_open(book):
    shorting = Shorting(enabled=True, borrow_rate_pct=Decimal(0))
    model = await bot(
        book, cash="10000", terms=BotTerms(shorting=shorting), max_short_exposure_pct=Decimal(100)
    )
    plan = {1: [("short", {"symbol": "MRGN", "quantity": 150})]}
    parts, orders, fills, ledger = await trade(book, model, "MRGN", plan)
    # Short 150 at 50: cash 17500. Day 2 closes at 100: shorts worth 15000, equity 2500, below the
    # 30% maintenance requirement of 4500. Covered at day 3's open, 101: cash 17500 - 15150.
    short, call = orders
    assert (call["rule"], call["side"], call["quantity"], call["status"]) == (
        "margin_call",
        "buy",
        150,
        "filled",
    )
    assert call["bar_time"].date() == DAYS[1]
    [(placed, why), (filled, how)] = await history(book, call["id"])
    assert (placed, filled, how) == ("open", "filled", "filled at the open 101.0000")
    assert why.startswith(
        "margin call: equity 2500.0000 is below the maintenance requirement 4500.0000 "
        "(30% of shorts worth 15000.0000)"
    )
    assert fill_summary(fills) == [
        (DAYS[0], "sell", 150, Decimal("50.0000")),
        (DAYS[2], "buy", 150, Decimal("101.0000")),
    ]
    assert ledger == {"cash": Decimal("2350.0000"), "positions": {}}


async def test_commissions_and_slippage_are_charged_on_every_fill(book):
    costs = Costs(
        commission_per_share=Decimal("0.01"),
        commission_pct=Decimal("0.05"),
        commission_min=Decimal(1),
        slippage_bps=Decimal(10),
    )
    model = await bot(book, terms=BotTerms(costs=costs))
    plan = {
        1: [("buy", {"symbol": "COST", "quantity": 50})],
        2: [("sell", {"symbol": "COST", "quantity": 50})],
    }
    parts, orders, fills, ledger = await trade(book, model, "COST", plan)
    # Buy at 100 + 10 bps = 100.10: notional 5005, commission 0.50 + 0.05% x 5005 = 3.0025.
    # Sell at 110 - 10 bps = 109.89: notional 5494.50, commission 0.50 + 2.74725 = 3.2472 (half-even).
    assert [(f["price"], f["commission"], f["slippage"]) for f in fills] == [
        (Decimal("100.1000"), Decimal("3.0025"), Decimal("5.0000")),
        (Decimal("109.8900"), Decimal("3.2472"), Decimal("5.5000")),
    ]
    assert ledger == {"cash": Decimal("100483.2503"), "positions": {}}
    async with book.connection() as conn:
        figures = await session_performance(conn, thread_id=orders[0]["thread_id"])
    assert figures is not None
    assert figures.costs_paid == "16.7497"
    assert figures.total_return == pytest.approx(0.004832503)
    assert figures.gross_return == pytest.approx(0.005)  # 100 -> 110 on 50 shares, before costs


async def test_a_paused_order_shows_its_type_and_prices_and_rests_once_approved(book):
    from langgraph.types import Command

    model = await bot(book, approval_notional=Decimal(5000))
    terms = {"order_type": "limit", "limit_price": 95, "time_in_force": "gtc", "take_profit": 110}
    plan = {1: [("buy", {"symbol": "LMTB", "quantity": 100, **terms})]}
    payload = {
        "model_id": model["id"],
        "signature": model["signature"],
        "start": DAYS[0].isoformat(),
        "end": DAYS[-1].isoformat(),
        "symbols": ["LMTB"],
        "decider": "llm",
    }
    context = SessionContext(pool=book, chat_model=scripted(plan))
    thread_id, _ = await run_session(book, payload, context=context)
    [pending] = (await state_of(book, thread_id)).interrupts
    request = pending.value
    assert (request["order_type"], request["limit_price"], request["time_in_force"]) == (
        "limit",
        "95.0000",
        "gtc",
    )
    assert (request["take_profit"], request["stop_loss"], request["price"], request["notional"]) == (
        "110.0000",
        None,
        "95.0000",
        "9500.0000",
    )
    await run_session(book, Command(resume={"action": "approve"}), thread_id=thread_id, context=context)
    async with book.connection() as conn:
        fills = [dict(r) for r in await (await conn.execute(FILL_ROWS, (model["id"],))).fetchall()]
    assert fill_summary(fills) == [(DAYS[3], "buy", 100, Decimal("95.0000"))]  # approved, it rested
    await assert_reconciles(book, model["id"])
