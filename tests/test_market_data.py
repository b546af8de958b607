"""Market data: split adjustment, synthetic minute bars, and no look-ahead."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from tradegraph.market import prices
from tradegraph.market.bar import Bar
from tradegraph.market.intraday import MINUTES_PER_DAY, minute_bars
from tradegraph.market.prices import bar_at, daily_bars, history, known_symbols, next_time, session_times


async def test_aapl_split_days_are_continuous(pool):
    bars = {b.time.date(): b for b in await daily_bars(pool, "AAPL")}
    # Raw closes: 101.25 on 2000-06-20, 55.63 after the 2:1 split. Adjusted, no jump of ~50%.
    before, after = bars[date(2000, 6, 20)].close, bars[date(2000, 6, 21)].close
    assert abs(after / before - 1) < Decimal("0.15")
    assert bars[date(2000, 6, 20)].close == Decimal("101.25") / 4  # two 2:1 splits later in range
    # The last bars keep their traded prices.
    assert bars[date(2013, 2, 28)].close == Decimal("441.4")


async def test_minute_bars_are_deterministic_and_inside_the_daily_bar(pool):
    daily = (await daily_bars(pool, "MSFT"))[-1]
    minutes = minute_bars(daily)
    assert len(minutes) == MINUTES_PER_DAY
    assert minutes[0].open == daily.open and minutes[-1].close == daily.close
    assert max(m.high for m in minutes) == daily.high
    assert min(m.low for m in minutes) == daily.low
    assert all(m.low <= min(m.open, m.close) <= max(m.open, m.close) <= m.high for m in minutes)
    assert sum(m.volume for m in minutes) == daily.volume
    assert minute_bars.__wrapped__(daily) == minutes  # recomputed without the cache: identical
    other = Bar(
        daily.symbol, daily.time - timedelta(days=1), daily.open, daily.high, daily.low, daily.close, 1000
    )
    assert [m.close for m in minute_bars(other)] != [m.close for m in minutes]


@pytest.mark.parametrize("mode", ["daily", "intraday"])
async def test_history_never_returns_a_bar_after_the_clock(pool, mode):
    ticks = await session_times(pool, ["AAPL"], date(2012, 3, 1), date(2012, 3, 2), mode)
    for clock in ticks[:: max(1, len(ticks) // 25)]:
        bars = await history(pool, "AAPL", clock, mode, limit=50)
        assert bars and all(b.time <= clock for b in bars)
        assert bars[-1].time == clock  # the newest bar is the one just closed, not a later one


async def test_bar_at_a_clock_with_no_trading_is_none(pool):
    saturday = datetime(2012, 3, 3, 16, 0)
    assert await bar_at(pool, "AAPL", saturday, "daily") is None
    assert await bar_at(pool, "FB", datetime(2012, 3, 2, 16, 0), "daily") is None  # before the IPO


async def test_intraday_clock_walks_minutes_then_the_next_trading_day(pool):
    friday_close = datetime(2012, 3, 2, 16, 0)
    assert await next_time(
        pool, ["AAPL"], datetime(2012, 3, 2, 9, 31), "intraday", date(2012, 3, 9)
    ) == datetime(2012, 3, 2, 9, 32)
    assert await next_time(pool, ["AAPL"], friday_close, "intraday", date(2012, 3, 9)) == datetime(
        2012, 3, 5, 9, 31
    )
    assert await next_time(pool, ["AAPL"], friday_close, "daily", date(2012, 3, 2)) is None


async def test_known_symbols_are_every_symbol_with_daily_bars_in_order(pool, monkeypatch):
    monkeypatch.setattr(prices, "_symbols_cache", [])  # read from the database, not this process's cache
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT DISTINCT symbol FROM daily_bars ORDER BY symbol")).fetchall()
    assert len(rows) >= 3
    assert await known_symbols(pool) == [row["symbol"] for row in rows]
