"""Look-ahead-free price reads for a session clock, over daily bars cached from Postgres.

Every read takes the session clock and returns only bars that have closed by then. Daily bars are
immutable reference data, so each symbol's history is read from `daily_bars` once per process.
"""

import asyncio
import bisect
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal

from tradegraph.database import Pool
from tradegraph.market.bar import Bar
from tradegraph.market.intraday import minute_bars, minute_times

Mode = Literal["daily", "intraday"]
DAILY_CLOSE = time(16, 0)

SELECT_SYMBOLS = "SELECT DISTINCT symbol FROM daily_bars ORDER BY symbol"
SELECT_DAILY = """
SELECT symbol, day, open, high, low, close, volume
FROM daily_bars WHERE symbol = %s ORDER BY day
"""

_daily_cache: dict[str, list[Bar]] = {}
_times_cache: dict[str, list[datetime]] = {}
_symbols_cache: list[str] = []
_loading: dict[str, asyncio.Task[list[Bar]]] = {}


class UnknownSymbol(ValueError):
    """The symbol has no data at all."""


async def known_symbols(pool: Pool, wanted: Sequence[str] = ()) -> list[str]:
    """Symbols with data, sorted; read again when a `wanted` one is missing (added since)."""
    if not _symbols_cache or any(symbol not in _symbols_cache for symbol in wanted):
        async with pool.connection() as conn:
            rows = await (await conn.execute(SELECT_SYMBOLS)).fetchall()
        _symbols_cache[:] = [row["symbol"] for row in rows]  # concurrent first readers write the same
    return list(_symbols_cache)


async def daily_bars(pool: Pool, symbol: str) -> list[Bar]:
    """All daily bars of a symbol, oldest first (bar time is the 16:00 close).

    Read once per process: concurrent first readers (100 sessions starting together) share one
    load instead of each reading the whole history.
    """
    if symbol in _daily_cache:
        return _daily_cache[symbol]
    loop = asyncio.get_running_loop()
    load = _loading.get(symbol)
    if load is None or load.get_loop() is not loop:
        load = _loading[symbol] = loop.create_task(_load_daily(pool, symbol), name=f"load {symbol}")
        load.add_done_callback(lambda _: _loading.pop(symbol, None))
    return await asyncio.shield(load)  # a cancelled reader does not cancel the others' load


async def _load_daily(pool: Pool, symbol: str) -> list[Bar]:
    if symbol not in await known_symbols(pool, [symbol]):
        raise UnknownSymbol(f"unknown symbol {symbol!r}; known: {', '.join(_symbols_cache)}")
    if symbol not in _daily_cache:
        async with pool.connection() as conn:
            rows = await (await conn.execute(SELECT_DAILY, (symbol,))).fetchall()
        bars = [
            Bar(
                r["symbol"],
                datetime.combine(r["day"], DAILY_CLOSE),
                r["open"],
                r["high"],
                r["low"],
                r["close"],
                r["volume"],
            )
            for r in rows
        ]
        _daily_cache[symbol] = bars
        _times_cache[symbol] = [b.time for b in bars]
    return _daily_cache[symbol]


async def _daily_index_at(pool: Pool, symbol: str, day: date) -> int:
    """Index of the last daily bar on or before `day`, -1 when none."""
    await daily_bars(pool, symbol)
    return bisect.bisect_right(_times_cache[symbol], datetime.combine(day, DAILY_CLOSE)) - 1


async def bar_at(pool: Pool, symbol: str, clock: datetime, mode: Mode) -> Bar | None:
    """The bar of `symbol` that closes exactly at `clock`, or None (no trading then)."""
    bars = await daily_bars(pool, symbol)
    i = await _daily_index_at(pool, symbol, clock.date())
    if i < 0 or bars[i].time.date() != clock.date():
        return None
    if mode == "daily":
        return bars[i] if bars[i].time == clock else None
    for minute in minute_bars(bars[i]):
        if minute.time == clock:
            return minute
    return None


async def history(pool: Pool, symbol: str, clock: datetime, mode: Mode, limit: int) -> list[Bar]:
    """Up to `limit` most recent bars closed at or before `clock`, oldest first."""
    bars = await daily_bars(pool, symbol)
    i = await _daily_index_at(pool, symbol, clock.date())
    if mode == "daily":
        return [b for b in bars[max(0, i - limit + 1) : i + 1] if b.time <= clock]
    collected: list[Bar] = []
    while i >= 0 and len(collected) < limit:
        closed = [m for m in minute_bars(bars[i]) if m.time <= clock]
        collected[:0] = closed
        i -= 1
    return collected[-limit:]


async def session_times(pool: Pool, symbols: list[str], start: date, end: date, mode: Mode) -> list[datetime]:
    """The session clock's ticks: bar close times between start and end where any symbol traded."""
    days: set[date] = set()
    for symbol in symbols:
        for bar in await daily_bars(pool, symbol):
            if start <= bar.time.date() <= end:
                days.add(bar.time.date())
    if mode == "daily":
        return [datetime.combine(d, DAILY_CLOSE) for d in sorted(days)]
    return [t for d in sorted(days) for t in minute_times(datetime.combine(d, time()))]


async def next_time(
    pool: Pool, symbols: list[str], clock: datetime, mode: Mode, end: date
) -> datetime | None:
    """The session tick after `clock`, or None when the session is over."""
    if mode == "intraday" and clock.time() < DAILY_CLOSE:
        return clock + timedelta(minutes=1)
    upcoming: list[date] = []
    for symbol in symbols:
        await daily_bars(pool, symbol)
        times = _times_cache[symbol]
        i = bisect.bisect_right(times, datetime.combine(clock.date(), DAILY_CLOSE))
        if i < len(times):
            upcoming.append(times[i].date())
    if not upcoming or min(upcoming) > end:
        return None
    day = min(upcoming)
    if mode == "daily":
        return datetime.combine(day, DAILY_CLOSE)
    return minute_times(datetime.combine(day, time()))[0]
