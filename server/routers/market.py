"""Market data over HTTP: a feed pushes bars (admins only), anyone signed in lists the symbols.

A pushed batch is checked by the same rules as a CSV import (`tradegraph/market/validation.py`) and
written in one transaction: one bad bar is a 422 naming its index, and nothing of the batch is written.
"""

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from server.deps import AdminUser, CurrentUser, PoolDep
from tradegraph.market.prices import Mode
from tradegraph.market.store import SymbolLoad, SymbolRange, symbol_ranges, write_bars
from tradegraph.market.validation import RowError, check_rows

router = APIRouter(prefix="/market", tags=["market"])
MAX_BARS = 10_000
ERRORS_NAMED = 20
Scalar = str | int | float | None


class BarIn(BaseModel):
    """One bar as a feed sends it; values are checked (and errors named) by the domain rules."""

    model_config = ConfigDict(extra="ignore")

    symbol: Scalar = None
    time: Scalar = None
    """A minute bar's start (09:30 .. 15:59), ISO 8601; with an offset it is converted to New York time."""
    day: Scalar = None
    """A daily bar's date, YYYY-MM-DD."""
    open: Scalar = None
    high: Scalar = None
    low: Scalar = None
    close: Scalar = None
    volume: Scalar = None


class BarsIn(BaseModel):
    """A batch of bars; `mode` defaults to intraday when the first bar has a `time` and no `day`."""

    model_config = ConfigDict(extra="ignore")

    bars: list[BarIn] = Field(min_length=1, max_length=MAX_BARS)
    mode: Mode | None = None


def _minute_label(close: datetime | None) -> str | None:
    return None if close is None else (close - timedelta(minutes=1)).isoformat()


def _load_json(load: SymbolLoad, mode: Mode) -> dict[str, Any]:
    first, last = (
        (load.first.date().isoformat(), load.last.date().isoformat())
        if mode == "daily"
        else (_minute_label(load.first), _minute_label(load.last))
    )
    return {
        "symbol": load.symbol,
        "rows": load.rows,
        "first": first,
        "last": last,
        "inserted": load.inserted,
        "updated": load.updated,
    }


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _range_json(r: SymbolRange) -> dict[str, Any]:
    return {
        "symbol": r.symbol,
        "first_day": _day(r.first_day),
        "last_day": _day(r.last_day),
        "daily_bars": r.days,
        "first_minute": None if r.first_minute is None else r.first_minute.isoformat(),
        "last_minute": None if r.last_minute is None else r.last_minute.isoformat(),
    }


def _rejection(errors: list[RowError]) -> JSONResponse:
    named = "; ".join(f"bars[{e.row}]: {e.message}" for e in errors[:ERRORS_NAMED])
    more = f"; and {len(errors) - ERRORS_NAMED} more" if len(errors) > ERRORS_NAMED else ""
    return JSONResponse(
        {
            "detail": f"{len(errors)} bad bar(s), nothing written: {named}{more}",
            "errors": [{"loc": ["body", "bars", e.row], "msg": e.message} for e in errors],
        },
        status_code=422,
    )


@router.post("/bars", response_model=None)
async def push_bars(body: BarsIn, user: AdminUser, pool: PoolDep) -> dict[str, Any] | JSONResponse:
    """Upsert a batch of daily or minute bars, all or nothing (admins only)."""
    first = body.bars[0]
    mode: Mode = body.mode or ("intraday" if first.time is not None and first.day is None else "daily")
    rows = [(i, bar.model_dump()) for i, bar in enumerate(body.bars)]
    checked = check_rows(rows, mode=mode, symbol=None, row_name="bars[{}]")
    if checked.errors:
        return _rejection(checked.errors)
    async with pool.connection() as conn, conn.transaction():
        loads = await write_bars(conn, bars=[b.bar for b in checked.bars], mode=mode)
    return {
        "mode": mode,
        "symbols": [_load_json(load, mode) for load in loads],
        "skipped": [{"index": s.row, "reason": s.message} for s in checked.skipped],
    }


@router.get("/symbols")
async def list_symbols(user: CurrentUser, pool: PoolDep) -> list[dict[str, Any]]:
    """Every symbol: first and last daily bar and how many, first and last real minute bar (starts)."""
    async with pool.connection() as conn:
        return [_range_json(r) for r in await symbol_ranges(conn)]
