"""Writes of market data (upserts of checked bars) and the symbols listing; the SQL on bar tables.

Writes go through `daily_bars`/`minute_bars` triggers that bump `market_versions`, which is how every
process's price cache learns that a symbol changed (`prices.refresh_changed`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection

from tradegraph.market.bar import Bar
from tradegraph.market.prices import Mode

CHUNK = 5000
"""Bars per statement: a year of minute bars is ~100k rows."""
_UPSERT = """
INSERT INTO {table} AS b (symbol, {at}, open, high, low, close, volume)
SELECT * FROM unnest(%s::text[], %s::{at_type}[], %s::numeric[], %s::numeric[], %s::numeric[],
                     %s::numeric[], %s::bigint[])
ON CONFLICT (symbol, {at}) DO UPDATE
SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume
WHERE (b.open, b.high, b.low, b.close, b.volume)
      IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)
RETURNING symbol, (xmax = 0) AS inserted
"""
UPSERT_DAILY = _UPSERT.format(table="daily_bars", at="day", at_type="date")
UPSERT_MINUTES = _UPSERT.format(table="minute_bars", at="time", at_type="timestamp")
"""Unchanged rows are left alone (not returned, no version bump): re-importing a file is free."""

SELECT_SYMBOLS = """
SELECT v.symbol, d.first_day, d.last_day, d.days,
       m.first_close - interval '1 minute' AS first_minute,
       m.last_close - interval '1 minute' AS last_minute
FROM market_versions v
CROSS JOIN LATERAL (
    SELECT min(day) AS first_day, max(day) AS last_day, count(*) AS days
    FROM daily_bars WHERE symbol = v.symbol
) d
CROSS JOIN LATERAL (
    SELECT min(time) AS first_close, max(time) AS last_close FROM minute_bars WHERE symbol = v.symbol
) m
WHERE d.days > 0 OR m.first_close IS NOT NULL
ORDER BY v.symbol
"""


@dataclass(frozen=True, slots=True)
class SymbolLoad:
    """What one write did to one symbol."""

    symbol: str
    rows: int
    first: datetime
    last: datetime
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        """Rows already stored with the same values."""
        return self.rows - self.inserted - self.updated


@dataclass(frozen=True, slots=True)
class SymbolRange:
    """A symbol's data: its daily bars' range and count, and its real minute bars' range (starts)."""

    symbol: str
    first_day: date | None
    last_day: date | None
    days: int
    first_minute: datetime | None
    last_minute: datetime | None


def _columns(bars: Sequence[Bar], mode: Mode) -> tuple[list[Any], ...]:
    at = [b.time.date() if mode == "daily" else b.time for b in bars]
    return (
        [b.symbol for b in bars],
        at,
        [b.open for b in bars],
        [b.high for b in bars],
        [b.low for b in bars],
        [b.close for b in bars],
        [b.volume for b in bars],
    )


async def write_bars(conn: AsyncConnection[Any], *, bars: Sequence[Bar], mode: Mode) -> list[SymbolLoad]:
    """Upsert checked bars (daily: one per day; intraday: by close time), in the caller's transaction.

    `conn` returns dict rows, like the app's pool.
    """
    statement = UPSERT_DAILY if mode == "daily" else UPSERT_MINUTES
    ordered = sorted(bars, key=lambda b: (b.symbol, b.time))  # same lock order for concurrent writers
    counts: dict[str, list[int]] = {}
    for i in range(0, len(ordered), CHUNK):
        cur = await conn.execute(statement, _columns(ordered[i : i + CHUNK], mode))
        for row in await cur.fetchall():
            counts.setdefault(row["symbol"], [0, 0])[0 if row["inserted"] else 1] += 1
    loads = []
    for symbol in sorted({b.symbol for b in ordered}):
        times = [b.time for b in ordered if b.symbol == symbol]
        inserted, updated = counts.get(symbol, [0, 0])
        loads.append(SymbolLoad(symbol, len(times), times[0], times[-1], inserted, updated))
    return loads


async def symbol_ranges(conn: AsyncConnection[Any]) -> list[SymbolRange]:
    """Every symbol with data, by name."""
    cur = await conn.execute(SELECT_SYMBOLS)
    rows = await cur.fetchall()
    return [
        SymbolRange(
            r["symbol"], r["first_day"], r["last_day"], r["days"], r["first_minute"], r["last_minute"]
        )
        for r in rows
    ]
