"""Checks on incoming bars, one home for a CSV import and a feed's JSON batch.

Each row is a mapping with the keys `symbol`, `day` (daily) or `time` (a minute's start, as data
vendors label minute bars), `open`, `high`, `low`, `close`, `volume` and optionally `adj_close`;
values are strings (CSV) or numbers (JSON). A row becomes a `Bar` or a `RowError` naming its row.
Times with a UTC offset are converted to New York exchange time; times without one are taken as
exchange time already. A minute bar's `Bar.time` is its close (start + 1 minute), as elsewhere.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from tradegraph.market.bar import Bar
from tradegraph.market.intraday import minute_times
from tradegraph.market.prices import DAILY_CLOSE, Mode
from tradegraph.money import to_money

EXCHANGE_TZ = ZoneInfo("America/New_York")
FIRST_CLOSE, LAST_CLOSE = time(9, 31), time(16, 0)
MINUTE = timedelta(minutes=1)
SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-^=]{0,19}$")
PRICE_FIELDS = ("open", "high", "low", "close")
MAX_PRICE = Decimal(10**12)
"""Prices are stored as numeric(16, 4)."""
MAX_VOLUME = 2**63
"""Volumes are stored as bigint."""


class RowProblem(ValueError):
    """What is wrong with one row."""


class OutsideSession(RowProblem):
    """A minute bar outside regular hours (09:30-16:00 on a weekday): skipped, not an error."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem with the row numbered `row` (a CSV line, or an index in a batch)."""

    row: int
    message: str


@dataclass(frozen=True, slots=True)
class IncomingBar:
    """A valid row: its bar, and its `Adj Close` when given (for split detection)."""

    row: int
    bar: Bar
    adj_close: Decimal | None


@dataclass
class Checked:
    """A checked batch: the valid bars sorted by symbol and time, errors, and rows skipped."""

    bars: list[IncomingBar] = field(default_factory=list)
    """Valid rows, by symbol then time."""
    errors: list[RowError] = field(default_factory=list)
    """Bad rows: nothing of the batch may be written while there is one."""
    skipped: list[RowError] = field(default_factory=list)
    """Minute bars outside regular hours, left out (warnings)."""


def _text(value: object, name: str) -> str:
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        raise RowProblem(f"{name} is missing")
    return str(value).strip()


def _exchange_time(text: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%m/%d/%Y")
        except ValueError:
            raise RowProblem(f"{name} {text!r} is not an ISO 8601 date or time") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(EXCHANGE_TZ).replace(tzinfo=None)
    return parsed


def parse_day(value: object) -> datetime:
    """A daily bar's time: the day's 16:00 close."""
    day = _exchange_time(_text(value, "day"), "day").date()
    return datetime.combine(day, DAILY_CLOSE)


def parse_minute(value: object) -> datetime:
    """A minute bar's close time from the minute's start label; OutsideSession for extended hours."""
    start = _exchange_time(_text(value, "time"), "time")
    if start.second or start.microsecond:
        raise RowProblem(f"time {start.isoformat()} is not on a whole minute")
    close = start + MINUTE
    if start.weekday() >= 5 or not FIRST_CLOSE <= close.time() <= LAST_CLOSE:
        raise OutsideSession(f"time {start.isoformat()} is outside regular hours 09:30-15:59 on weekdays")
    return close


def parse_price(value: object, name: str) -> Decimal:
    """A finite decimal price at ledger precision (a leading `$` is allowed)."""
    text = _text(value, name).removeprefix("$")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise RowProblem(f"{name} {text!r} is not a number") from None
    if not price.is_finite() or abs(price) >= MAX_PRICE:
        raise RowProblem(f"{name} {text!r} is not a finite number below {MAX_PRICE}")
    return to_money(price)


def parse_volume(value: object) -> int:
    """A whole, non-negative share count."""
    text = _text(value, "volume")
    try:
        volume = Decimal(text)
    except InvalidOperation:
        raise RowProblem(f"volume {text!r} is not a number") from None
    if not volume.is_finite() or volume != volume.to_integral_value():
        raise RowProblem(f"volume {text!r} is not a whole number")
    if volume < 0:
        raise RowProblem(f"volume {text} is negative")
    if volume >= MAX_VOLUME:
        raise RowProblem(f"volume {text} is too large")
    return int(volume)


def check_ohlc(o: Decimal, h: Decimal, lo: Decimal, c: Decimal) -> None:
    """Raise naming the first broken rule of low > 0 and low <= open, close <= high."""
    rules = [
        (lo > 0, f"low {lo} is not above 0"),
        (lo <= o, f"open {o} is below low {lo}"),
        (lo <= c, f"close {c} is below low {lo}"),
        (o <= h, f"open {o} is above high {h}"),
        (c <= h, f"close {c} is above high {h}"),
    ]
    for holds, message in rules:
        if not holds:
            raise RowProblem(message)


def parse_symbol(row: Mapping[str, object], default: str | None) -> str:
    """The row's symbol (upper case), else `default`; a row naming another symbol than `default` is bad."""
    given = row.get("symbol")
    if given is None or str(given).strip() == "":
        if default is None:
            raise RowProblem("symbol is missing")
        return default
    symbol = str(given).strip().upper()
    if not SYMBOL.match(symbol):
        raise RowProblem(f"symbol {symbol!r} is not a ticker (letters, digits, . - ^ =; up to 20)")
    if default is not None and symbol != default:
        raise RowProblem(f"symbol {symbol} differs from the symbol given, {default}")
    return symbol


def parse_key(row: Mapping[str, object], *, mode: Mode, symbol: str | None) -> tuple[str, datetime]:
    """The row's symbol and bar time (a daily bar: 16:00 of its day; a minute bar: its close)."""
    name = parse_symbol(row, symbol)
    day, at = row.get("day"), row.get("time")
    if mode == "daily":
        return name, parse_day(day if day not in (None, "") else at)
    return name, parse_minute(at if at not in (None, "") else day)


def parse_values(row: Mapping[str, object], symbol: str, at: datetime) -> IncomingBar:
    """The row's prices and volume as a bar (row number 0: the caller sets it); raises RowProblem."""
    o, h, lo, c = (parse_price(row.get(f), f) for f in PRICE_FIELDS)
    check_ohlc(o, h, lo, c)
    volume = parse_volume(row.get("volume"))
    raw_adj = row.get("adj_close")
    adj = None if raw_adj in (None, "") else parse_price(raw_adj, "adj_close")
    if adj is not None and adj <= 0:
        raise RowProblem(f"adj_close {adj} is not above 0")
    return IncomingBar(0, Bar(symbol, at, o, h, lo, c, volume), adj)


def label(at: datetime, mode: Mode) -> str:
    """A bar time as the input labels it: the day, or the minute's start."""
    return at.date().isoformat() if mode == "daily" else (at - MINUTE).strftime("%Y-%m-%d %H:%M")


def check_rows(
    rows: Iterable[tuple[int, Mapping[str, object]]],
    *,
    mode: Mode,
    symbol: str | None,
    row_name: str = "row {}",
) -> Checked:
    """Check every numbered row: its time, duplicates of (symbol, time), numbers, OHLC rules.

    `row_name` formats a row number in messages (`line {}` for a file, `bars[{}]` for a batch).
    """
    checked = Checked()
    seen: dict[tuple[str, datetime], int] = {}
    for number, row in rows:
        try:
            key = parse_key(row, mode=mode, symbol=symbol)
            if key in seen:
                first = row_name.format(seen[key])
                raise RowProblem(f"duplicate: {key[0]} {label(key[1], mode)} is also {first}")
            seen[key] = number
            parsed = parse_values(row, *key)
        except OutsideSession as exc:
            checked.skipped.append(RowError(number, str(exc)))
            continue
        except RowProblem as exc:
            checked.errors.append(RowError(number, str(exc)))
            continue
        checked.bars.append(IncomingBar(number, parsed.bar, parsed.adj_close))
    checked.bars.sort(key=lambda b: (b.bar.symbol, b.bar.time))
    return checked


def _listed(items: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def gaps(bars: Sequence[Bar], mode: Mode) -> list[str]:
    """Warnings for missing weekdays (daily) or missing minutes of a day (intraday), per symbol."""
    warnings: list[str] = []
    by_symbol: dict[str, list[datetime]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar.time)
    for symbol, times in sorted(by_symbol.items()):
        if mode == "daily":
            have = {t.date() for t in times}
            first, last = min(have), max(have)
            days = (first + timedelta(days=i) for i in range((last - first).days + 1))
            missing = [d.isoformat() for d in days if d.weekday() < 5 and d not in have]
            if missing:
                warnings.append(
                    f"{symbol}: {len(missing)} weekday(s) without a bar between {first} and {last} "
                    f"(exchange holidays count too): {_listed(missing)}"
                )
            continue
        by_day: dict[date, set[datetime]] = {}
        for t in times:
            by_day.setdefault(t.date(), set()).add(t)
        for day, have_minutes in sorted(by_day.items()):
            expected = minute_times(datetime.combine(day, time()))
            missing = [(t - MINUTE).strftime("%H:%M") for t in expected if t not in have_minutes]
            if missing:
                warnings.append(f"{symbol} {day}: {len(missing)} minute(s) missing: {_listed(missing)}")
    return warnings
