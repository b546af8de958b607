"""Read OHLCV from common CSV exports into checked, split-adjusted bars (nothing here touches the database).

Accepted: a `Date` (daily) or `Datetime`/`Timestamp` (intraday minute bars, labelled by the minute's
start) column, `Open`, `High`, `Low`, `Close`, `Volume`, optionally `Adj Close`, and optionally a
`Symbol`/`Ticker` column; header names are matched ignoring case, spaces and underscores (Yahoo
Finance, yfinance, stooq and most brokers' exports fit). With `Adj Close`, splits are detected and
earlier prices adjusted exactly as for the shipped data (`loader.later_split_ratios`).
"""

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tradegraph.market.bar import Bar
from tradegraph.market.loader import later_split_ratios, split_adjusted
from tradegraph.market.prices import Mode
from tradegraph.market.validation import IncomingBar, RowError, check_rows, gaps

HEADER_KEYS = {
    "date": "day",
    "day": "day",
    "datetime": "time",
    "timestamp": "time",
    "time": "time",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "closelast": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
    "symbol": "symbol",
    "ticker": "symbol",
}
"""Normalized header name (lower case, letters and digits only) -> row key."""
REQUIRED = ("open", "high", "low", "close", "volume")
FILE_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-^=]*")

NumberedRow = tuple[int, dict[str, str]]


class UnreadableFile(ValueError):
    """The file as a whole cannot be imported (no header, a required column missing, no symbol)."""


@dataclass
class ImportPlan:
    """What an import would write, or why it must not."""

    mode: Mode
    bars: list[Bar] = field(default_factory=list)
    """Valid bars, split-adjusted, by symbol then time."""
    errors: list[RowError] = field(default_factory=list)
    """Bad rows, numbered by file line: nothing is written while there is one."""
    warnings: list[str] = field(default_factory=list)
    """Gaps, skipped extended-hours rows, detected splits."""


def read_csv(path: Path) -> tuple[list[str], list[NumberedRow]]:
    """The header and the rows (keyed by header) with their line numbers in the file."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = [(reader.line_num, dict(row)) for row in reader]
        return list(reader.fieldnames or []), rows


def symbol_from_path(path: Path) -> str | None:
    """`aapl.csv`, `AAPL_1m.csv` or `AAPL (1).csv` -> `AAPL`."""
    found = FILE_SYMBOL.match(path.stem)
    return found.group(0).upper() if found else None


def column_keys(header: Sequence[str]) -> dict[str, str]:
    """Header name -> row key, for the columns we know; raises naming a missing required column."""
    keys: dict[str, str] = {}
    for name in header:
        key = HEADER_KEYS.get(re.sub(r"[^a-z0-9]", "", (name or "").lower()))
        if key is not None and key not in keys.values():
            keys[name] = key
    found = set(keys.values())
    if not found & {"day", "time"}:
        raise UnreadableFile(f"no Date or Datetime column in the header {', '.join(header)}")
    missing = [k.capitalize() for k in REQUIRED if k not in found]
    if missing:
        raise UnreadableFile(f"missing column(s) {', '.join(missing)} in the header {', '.join(header)}")
    return keys


def plan_import(
    header: Sequence[str], rows: Sequence[NumberedRow], *, symbol: str | None, mode: Mode | None
) -> ImportPlan:
    """Check every row of a CSV and build the split-adjusted bars to write, or the errors."""
    keys = column_keys(header)
    if mode is None:
        mode = "intraday" if "time" in keys.values() else "daily"
    if symbol is None and "symbol" not in keys.values():
        raise UnreadableFile("no symbol: give --symbol, name the file after it, or add a Symbol column")
    keyed = [(line, {keys[k]: v for k, v in row.items() if k in keys}) for line, row in rows]
    checked = check_rows(keyed, mode=mode, symbol=symbol.upper() if symbol else None, row_name="line {}")
    plan = ImportPlan(mode, errors=checked.errors)
    if checked.skipped:
        first = checked.skipped[0]
        plan.warnings.append(
            f"{len(checked.skipped)} row(s) outside regular hours skipped (line {first.row}: {first.message})"
        )
    if plan.errors:
        return plan
    by_symbol: dict[str, list[IncomingBar]] = {}
    for incoming in checked.bars:
        by_symbol.setdefault(incoming.bar.symbol, []).append(incoming)
    for symbol_bars in by_symbol.values():
        plan.bars.extend(_split_adjusted(symbol_bars, plan.warnings))
    plan.warnings.extend(gaps(plan.bars, mode))
    return plan


def _split_adjusted(bars: list[IncomingBar], warnings: list[str]) -> list[Bar]:
    """One symbol's bars (oldest first) with earlier prices adjusted for the splits the file shows."""
    adj = [b.adj_close for b in bars]
    if not any(a is not None for a in adj):
        return [b.bar for b in bars]
    symbol = bars[0].bar.symbol
    if any(a is None for a in adj):
        warnings.append(f"{symbol}: Adj Close is blank on some rows; prices are imported unadjusted")
        return [b.bar for b in bars]
    ratios = later_split_ratios([float(b.adj_close or 0) / float(b.bar.close) for b in bars])
    splits = [bars[i].bar.time.date().isoformat() for i in range(1, len(bars)) if ratios[i] != ratios[i - 1]]
    if splits:
        warnings.append(
            f"{symbol}: split(s) on {', '.join(splits)}; earlier prices in this file were adjusted "
            "(bars stored before, outside this file, are not)"
        )
    adjusted = []
    for incoming, ratio in zip(bars, ratios, strict=True):
        b = incoming.bar
        o, h, lo, c, volume = split_adjusted(ratio, b.open, b.high, b.low, b.close, Decimal(b.volume))
        adjusted.append(Bar(b.symbol, b.time, o, h, lo, c, volume))
    return adjusted
