"""Validate what starts a session (mode, dates, symbols, decider) against the data we have."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

from tradegraph.database import Pool
from tradegraph.market.prices import Mode, daily_bars, known_symbols, refresh_changed, session_times

DeciderName = Literal["rule", "llm"]
MODES: tuple[Mode, ...] = get_args(Mode)
DECIDERS: tuple[DeciderName, ...] = get_args(DeciderName)
MAX_SYMBOLS = 20
MAX_INTRADAY_DAYS = 31
"""Intraday sessions are capped (390 bars a day) to keep one session's run bounded."""


class InvalidSession(ValueError):
    """The session request names something we cannot trade; the message says what."""


@dataclass(frozen=True)
class SessionRequest:
    """A checked session request."""

    mode: Mode
    start: date
    end: date
    symbols: list[str]
    decider: DeciderName

    async def bar_times(self, pool: Pool) -> list[datetime]:
        """The session clock's ticks: every bar this request will run, in order."""
        return await session_times(pool, self.symbols, self.start, self.end, self.mode)


EXCHANGE_TZ = ZoneInfo("America/New_York")
TODAY = "today"
"""A session's `start` or `end` may be `today`: the exchange's date when the run starts."""


def exchange_today() -> date:
    """Today's date at the exchange (New York), whatever the server's time zone."""
    return datetime.now(EXCHANGE_TZ).date()


def _parse_day(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise InvalidSession(f"{field} must be a date string YYYY-MM-DD or 'today', got {value!r}")
    if value.strip().lower() == TODAY:
        return exchange_today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidSession(f"{field} must be a date YYYY-MM-DD or 'today', got {value!r}") from None


def _parse_symbols(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [s for s in value.split(",") if s.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise InvalidSession("symbols must be a non-empty list of ticker strings")
    symbols = list(dict.fromkeys(s.strip().upper() for s in value))
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidSession(f"at most {MAX_SYMBOLS} symbols per session")
    return symbols


async def check_session_request(pool: Pool, raw: Mapping[str, Any]) -> SessionRequest:
    """Parse and check a request whose dates data covers; raises InvalidSession naming the first problem."""
    request = await check_session_shape(pool, raw)
    start, end, symbols = request.start, request.end, request.symbols
    traded = False
    for symbol in symbols:
        bars = await daily_bars(pool, symbol)
        first, last = bars[0].time.date(), bars[-1].time.date()
        traded = traded or (start <= last and end >= first)
    if not traded:
        raise InvalidSession(
            f"no data for {', '.join(symbols)} between {start} and {end} "
            f"(data covers {first}..{last} for {symbols[-1]})"
        )
    return request


async def check_session_shape(pool: Pool, raw: Mapping[str, Any]) -> SessionRequest:
    """Parse and check a request without asking whether data covers its dates (a schedule's `today`
    has no bars until that day closes); raises InvalidSession naming the first problem."""
    mode = raw.get("mode", "daily")
    if mode not in MODES:
        raise InvalidSession(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    decider = raw.get("decider", "rule")
    if decider not in DECIDERS:
        raise InvalidSession(f"decider must be one of {', '.join(DECIDERS)}, got {decider!r}")
    start, end = _parse_day(raw.get("start"), "start"), _parse_day(raw.get("end"), "end")
    if start > end:
        raise InvalidSession(f"start {start} is after end {end}")
    if mode == "intraday" and (end - start).days > MAX_INTRADAY_DAYS:
        raise InvalidSession(f"intraday sessions span at most {MAX_INTRADAY_DAYS} days")
    symbols = _parse_symbols(raw.get("symbols"))
    await refresh_changed(pool, symbols)  # bars imported or pushed since this process read them
    known = await known_symbols(pool, symbols)
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise InvalidSession(f"unknown symbols {', '.join(unknown)}; known: {', '.join(known)}")
    return SessionRequest(cast(Mode, mode), start, end, symbols, cast(DeciderName, decider))
