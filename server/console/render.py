"""Templates of the console and the filters that format money, percentages, times and sparklines."""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from tradegraph.money import format_money

HERE = Path(__file__).parent
STATIC_PATH = "/console/static"
MARKET_TZ = ZoneInfo("America/New_York")
THREAD_STATUS = {
    "busy": "running",
    "interrupted": "waiting for approval",
    "error": "failed",
    "idle": "finished",
}
"""Thread statuses as the console names them (always shown as text, never by colour alone)."""


def percent(value: Any) -> str:
    """A fraction as a percentage with two decimals: `0.0123` -> `1.23 %`."""
    return "n/a" if value is None else f"{float(value) * 100:.2f} %"


def ratio(value: Any) -> str:
    """A plain figure with two decimals (Sharpe), or `n/a`."""
    return "n/a" if value is None else f"{float(value):.2f}"


def market_time(value: Any, with_time: bool = True) -> str:
    """An ISO time in New York time: `2012-01-03 16:00` (or only the date)."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(MARKET_TZ)
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def zone_time(value: Any, zone: str) -> str:
    """An ISO moment as wall time in an IANA time zone: `2026-07-01 22:30`."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def utc_time(value: Any) -> str:
    """A wall-clock moment (not a bar): `2026-11-23 23:35 UTC`."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def figure(value: Any) -> str:
    """A limit as typed, without the ledger's trailing zeros: `25.0000` -> `25`."""
    if value in (None, ""):
        return ""
    try:
        return f"{Decimal(str(value)).normalize():f}"
    except InvalidOperation:
        return str(value)


def sparkline_points(values: list[float], width: int = 120, height: int = 28) -> str:
    """SVG polyline points for a series scaled into a width x height box (y grows downward)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values)
    )


def thread_status(value: str) -> str:
    """The console's words for a thread status."""
    return THREAD_STATUS.get(value, value)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    money=format_money,
    percent=percent,
    ratio=ratio,
    figure=figure,
    market_time=market_time,
    utc_time=utc_time,
    zone_time=zone_time,
    thread_status=thread_status,
)
templates.env.globals.update(sparkline_points=sparkline_points, static=lambda path: f"{STATIC_PATH}/{path}")
