"""Load the shipped daily prices into `daily_bars`, adjusting for stock splits.

The source file (Quandl WIKI Prices, public domain, via bokeh-sampledata) is unadjusted. Its
`Adj Close / Close` factor jumps on split days (and drifts slightly with dividends). We detect the
jumps, round each to a clean split ratio (2:1, 3:2, 7:1 ...) and divide earlier prices by it, so
prices are split-adjusted only and the newest bars keep their traded prices.
"""

import csv
import gzip
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import psycopg

from tradegraph.money import to_money
from tradegraph.settings import PROJECT_ROOT

PRICES_FILE = PROJECT_ROOT / "tradegraph" / "data" / "stocks.csv.gz"
SPLIT_JUMP = 1.3
"""A day-over-day change of the adjustment factor beyond this (either way) is a split."""

COUNT_BARS = "SELECT count(*) FROM daily_bars"
COPY_BARS = "COPY daily_bars (symbol, day, open, high, low, close, volume) FROM STDIN"

Row = dict[str, str]


def read_rows(path: Path = PRICES_FILE) -> dict[str, list[Row]]:
    """The file's rows grouped by ticker, oldest first."""
    by_symbol: dict[str, list[Row]] = defaultdict(list)
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            by_symbol[row["Ticker"]].append(row)
    for rows in by_symbol.values():
        rows.sort(key=lambda r: r["Date"])
    return by_symbol


def split_ratios(rows: list[Row]) -> list[Fraction]:
    """For each row, the product of the split ratios of all later rows (1 when none)."""
    return later_split_ratios([float(r["Adj Close"]) / float(r["Close"]) for r in rows])


def later_split_ratios(factors: Sequence[float]) -> list[Fraction]:
    """For each `Adj Close / Close` factor (oldest first), the product of the split ratios after it.

    One home for split detection: the shipped file and imported CSVs (`csv_import.py`) both use it.
    """
    later = [Fraction(1)] * len(factors)
    running = Fraction(1)
    for i in range(len(factors) - 1, -1, -1):
        later[i] = running
        if i > 0:
            jump = factors[i] / factors[i - 1]
            if jump > SPLIT_JUMP or jump < 1 / SPLIT_JUMP:
                running *= Fraction(jump).limit_denominator(10)
    return later


def split_adjusted(
    ratio: Fraction, o: Decimal, h: Decimal, lo: Decimal, c: Decimal, volume: Decimal
) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
    """Prices divided and volume multiplied by the later splits' `ratio`, at ledger precision."""
    scale = Decimal(ratio.denominator) / Decimal(ratio.numerator)
    o, h, lo, c = (to_money(v * scale) for v in (o, h, lo, c))
    # A few source rows have open/close a cent outside high/low (or rounding puts them there);
    # widen the range to contain them.
    return o, max(h, o, c), min(lo, o, c), c, int(volume / scale)


def adjusted_bars(symbol: str, rows: list[Row]) -> Iterator[tuple[object, ...]]:
    """Rows as split-adjusted `daily_bars` tuples."""
    for row, ratio in zip(rows, split_ratios(rows), strict=True):
        o, h, lo, c = (Decimal(row[field]) for field in ("Open", "High", "Low", "Close"))
        o, h, lo, c, volume = split_adjusted(ratio, o, h, lo, c, Decimal(row["Volume"]))
        yield (symbol, row["Date"], o, h, lo, c, volume)


def all_adjusted_bars(path: Path = PRICES_FILE) -> Iterable[tuple[object, ...]]:
    """Every bar in the file, split-adjusted."""
    for symbol, rows in sorted(read_rows(path).items()):
        yield from adjusted_bars(symbol, rows)


async def load_prices(url: str, path: Path = PRICES_FILE) -> int:
    """Load the bars once (no-op when present); returns how many rows were loaded now."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(COUNT_BARS)
        row = await cur.fetchone()
        if row and row[0] > 0:
            return 0
        await conn.execute("LOCK TABLE daily_bars IN EXCLUSIVE MODE")
        cur = await conn.execute(COUNT_BARS)
        row = await cur.fetchone()
        if row and row[0] > 0:
            return 0
        buffer = io.StringIO()
        count = 0
        for bar in all_adjusted_bars(path):
            buffer.write("\t".join(str(v) for v in bar) + "\n")
            count += 1
        async with conn.cursor().copy(COPY_BARS) as copy:
            await copy.write(buffer.getvalue())
        await conn.commit()
    return count
