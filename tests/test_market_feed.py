"""Your own market data: CSV import (CLI), bars pushed over HTTP, the symbols list, real minute bars,
and price caches that see new data in sessions started afterwards (real Postgres, real server)."""

import random
import string
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.support.sessions import input_for, run_session
from tests.test_cli import run_cli
from tradegraph.accounts import create_user
from tradegraph.market.intraday import minute_bars
from tradegraph.market.prices import bar_at, daily_bars, history
from tradegraph.session_request import check_session_request

YAHOO_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"


def new_symbol() -> str:
    """A made-up ticker of its own per test, so the shared database stays usable."""
    return "Z" + "".join(random.choices(string.ascii_uppercase, k=7))


def weekdays(first: date, count: int) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def trend(i: int) -> Decimal:
    """A steady uptrend: the rule decider's 5-bar average crosses above its 20-bar one."""
    return Decimal(50) + Decimal(i) / 2


def yahoo_rows(days: list[date], *, split_at: int = 0) -> list[str]:
    """Yahoo-style rows; before `split_at` prices are pre-2:1-split (doubled, Adj Close halves them)."""
    rows = []
    for i, day in enumerate(days):
        p, raw = trend(i), trend(i) * (2 if i < split_at else 1)
        rows.append(f"{day},{raw},{raw + 1},{raw - 1},{raw},{p},{1000}")
    return rows


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


async def count(pool: Any, sql: str, *params: Any) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    return int(row["n"])


async def admin_key(pool: Any) -> str:
    async with pool.connection() as conn:
        _, key = await create_user(conn, name=f"feed-{uuid.uuid4().hex[:8]}", admin=True)
    return key


async def test_yahoo_csv_is_imported_split_adjusted_and_a_session_trades_it(
    database_url, pool, make_model, tmp_path
):
    symbol = new_symbol()
    days = weekdays(date(2024, 1, 2), 45)
    path = write(tmp_path / f"{symbol.lower()}.csv", YAHOO_HEADER, yahoo_rows(days, split_at=10))

    result = run_cli(database_url, "data", "import", str(path))

    assert result.returncode == 0, result.stderr
    assert f"{symbol}: 45 daily bars {days[0]} .. {days[-1]} (45 inserted, 0 updated" in result.stdout
    assert f"split(s) on {days[10]}" in result.stderr
    bars = await daily_bars(pool, symbol)
    assert [b.close for b in bars] == [trend(i) for i in range(45)]  # no jump at the split
    assert (bars[0].volume, bars[-1].volume) == (2000, 1000)

    model = await make_model()
    await run_session(pool, input_for(model, symbols=[symbol], start=str(days[0]), end=str(days[-1])))
    fills = "SELECT count(*) AS n FROM fills WHERE model_id = %s AND symbol = %s"
    assert await count(pool, fills, model["id"], symbol) > 0

    again = run_cli(database_url, "data", "import", str(path))
    assert "(0 inserted, 0 updated, 45 unchanged)" in again.stdout, again.stderr


async def test_import_names_bad_rows_by_line_and_writes_nothing(database_url, pool, tmp_path):
    first, second = new_symbol(), new_symbol()
    rows = [
        f"2024-01-02,{first},10,11,9,10,100",
        f"2024-01-03,{first},10,11,9,10,100",
        f"2024-01-04,{first},10,9.5,9,10,100",  # line 4: open above high
        f"2024-01-03,{first},10,11,9,10,100",  # line 5: same day as line 3
        f"2024-01-0x,{second},10,11,9,10,100",  # line 6: no date
        f"2024-01-05,{second},10,11,9,10,-1",  # line 7: negative volume
    ]
    path = write(tmp_path / "two.csv", "Date,Symbol,Open,High,Low,Close,Volume", rows)

    result = run_cli(database_url, "data", "import", str(path))

    assert result.returncode == 1
    assert "two.csv: line 4: open 10.0000 is above high 9.5000" in result.stderr
    assert f"line 5: duplicate: {first} 2024-01-03 is also line 3" in result.stderr
    assert "line 6: day '2024-01-0x' is not an ISO 8601 date" in result.stderr
    assert "line 7: volume -1 is negative" in result.stderr
    assert "nothing was written" in result.stderr
    sql = "SELECT count(*) AS n FROM daily_bars WHERE symbol = ANY(%s)"
    assert await count(pool, sql, [first, second]) == 0


async def test_intraday_import_replaces_the_synthetic_minutes_of_its_day(database_url, pool, tmp_path):
    symbol = new_symbol()
    days = weekdays(date(2024, 3, 4), 3)
    run_cli(
        database_url, "data", "import", str(write(tmp_path / f"{symbol}.csv", YAHOO_HEADER, yahoo_rows(days)))
    )
    day = days[1]
    first_close = datetime.combine(day, datetime.min.time()).replace(hour=9, minute=31)
    synthetic = await bar_at(pool, symbol, first_close, "intraday")  # cached by this process now
    daily = (await daily_bars(pool, symbol))[1]
    assert synthetic == minute_bars(daily)[0]

    # yfinance-style minutes labelled by their start, in UTC (09:30 New York is 14:30Z in March before DST)
    start = datetime.combine(day, datetime.min.time()).replace(hour=14, minute=30)
    rows = [
        f"{(start + timedelta(minutes=i)).isoformat()}+00:00,51,51.5,50.5,51.25,51.25,{10 + i}"
        for i in range(390)
        if i != 100
    ]
    minutes = write(tmp_path / f"{symbol}_1m.csv", "Datetime,Open,High,Low,Close,Adj Close,Volume", rows)
    result = run_cli(database_url, "data", "import", str(minutes))
    assert result.returncode == 0, result.stderr
    assert f"{symbol}: 389 intraday bars {day} 09:30 .. {day} 15:59 (389 inserted" in result.stdout
    assert f"{symbol} {day}: 1 minute(s) missing: 11:10" in result.stderr

    request = {"mode": "intraday", "start": str(day), "end": str(day), "symbols": [symbol]}
    await check_session_request(pool, request)  # what every session start does: sees the new version
    real = await bar_at(pool, symbol, first_close, "intraday")
    assert real is not None and (real.open, real.close, real.volume) == (Decimal(51), Decimal("51.25"), 10)
    assert await bar_at(pool, symbol, first_close.replace(hour=11, minute=11), "intraday") is None
    closed = await history(pool, symbol, first_close + timedelta(minutes=2), "intraday", limit=3)
    assert [b.volume for b in closed] == [10, 11, 12]  # only bars closed by the clock, all real
    other_day = first_close + timedelta(days=1)
    assert (
        await bar_at(pool, symbol, other_day, "intraday")
        == minute_bars((await daily_bars(pool, symbol))[2])[0]
    )


def daily_batch(symbol: str, days: list[date], *, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "symbol": symbol,
            "day": str(d),
            "open": 20 + i,
            "high": 21 + i,
            "low": 19 + i,
            "close": 20.5 + i,
            "volume": 5000,
        }
        for i, d in enumerate(days, start=offset)
    ]


async def test_a_pushed_batch_with_one_bad_bar_writes_nothing_and_names_it(server, pool, make_user):
    symbol, key = new_symbol(), await admin_key(pool)
    batch = daily_batch(symbol, weekdays(date(2024, 5, 1), 4))
    batch[2] = {**batch[2], "high": 1}
    batch.append(dict(batch[0]))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        refused = await http.post("/market/bars", json={"bars": batch}, headers={"x-api-key": key})
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert "bars[2]: open 22.0000 is above high 1.0000" in detail
        assert f"bars[4]: duplicate: {symbol} 2024-05-01 is also bars[0]" in detail
        good = daily_batch(symbol, weekdays(date(2024, 5, 1), 4))
        user = await make_user()
        forbidden = await http.post(
            "/market/bars", json={"bars": good}, headers={"x-api-key": user["api_key"]}
        )
        assert forbidden.status_code == 403
        assert "not an admin" in forbidden.json()["detail"]
        assert (await http.post("/market/bars", json={"bars": good})).status_code == 401
    assert await count(pool, "SELECT count(*) AS n FROM daily_bars WHERE symbol = %s", symbol) == 0


async def test_pushed_bars_are_listed_and_seen_by_sessions_started_afterwards(server, pool, make_model):
    symbol, key = new_symbol(), await admin_key(pool)
    days = weekdays(date(2024, 6, 3), 40)
    model = await make_model()
    reader = {"x-api-key": model["api_key"]}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers={"x-api-key": key}) as http:
        pushed = await http.post("/market/bars", json={"bars": daily_batch(symbol, days[:30])})
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["symbols"] == [
            {
                "symbol": symbol,
                "rows": 30,
                "first": str(days[0]),
                "last": str(days[29]),
                "inserted": 30,
                "updated": 0,
            }
        ]
        assert len(await daily_bars(pool, symbol)) == 30  # this process caches the symbol now
        thread = await http.post("/threads", json={"metadata": {"model_id": model["id"]}}, headers=reader)
        thread_id = thread.json()["thread_id"]
        session = {"mode": "daily", "symbols": [symbol], "decider": "rule"}
        first_run = {
            "assistant_id": "trading_session",
            "input": {**session, "start": str(days[0]), "end": str(days[29])},
        }
        ran = await http.post(f"/threads/{thread_id}/runs/wait", json=first_run, headers=reader)
        assert ran.status_code == 200, ran.text  # and the server process caches it too

        correction = [{**daily_batch(symbol, days[:1])[0], "close": 20.25}]
        more = await http.post(
            "/market/bars", json={"bars": correction + daily_batch(symbol, days[30:], offset=30)}
        )
        assert more.json()["symbols"][0] == {
            "symbol": symbol,
            "rows": 11,
            "first": str(days[0]),
            "last": str(days[39]),
            "inserted": 10,
            "updated": 1,
        }
        minutes = [
            {
                "symbol": symbol,
                "time": f"{days[39]}T09:{30 + i}:00-04:00",
                "open": 60,
                "high": 61,
                "low": 59,
                "close": 60,
                "volume": 10,
            }
            for i in range(3)
        ]
        assert (await http.post("/market/bars", json={"bars": minutes})).json()["mode"] == "intraday"

        second_run = {
            "assistant_id": "trading_session",
            "input": {**session, "start": str(days[30]), "end": str(days[39])},
        }
        ran = await http.post(f"/threads/{thread_id}/runs/wait", json=second_run, headers=reader)
        assert ran.status_code == 200, ran.text  # the server saw the new days (else: 422 no data)

        listed = await http.get("/market/symbols", headers=reader)
        assert listed.status_code == 200
        [mine] = [s for s in listed.json() if s["symbol"] == symbol]
        assert mine == {
            "symbol": symbol,
            "first_day": str(days[0]),
            "last_day": str(days[39]),
            "daily_bars": 40,
            "first_minute": f"{days[39]}T09:30:00",
            "last_minute": f"{days[39]}T09:32:00",
        }
        assert {"AAPL", "MSFT", "IBM"} <= {s["symbol"] for s in listed.json()}
        assert (await http.get("/market/symbols", headers={"x-api-key": "nope"})).status_code == 401
        page = await http.get("/console/fragments/data", headers=reader)
        assert f'<tr data-symbol="{symbol}">' in page.text
        form = await http.get(f"/console/fragments/models/{model['id']}", headers=reader)
        assert f'<option value="{symbol}">{days[0]} to {days[39]}</option>' in form.text

    await check_session_request(pool, {"start": str(days[30]), "end": str(days[39]), "symbols": [symbol]})
    bars = await daily_bars(pool, symbol)
    assert len(bars) == 40 and bars[0].close == Decimal("20.25")  # appended and corrected bars both seen


async def test_a_running_session_keeps_to_the_bars_known_when_it_started(pool, make_model):
    """Bars that arrive while a session runs (a feed) do not stretch it past the bars it started with:
    its run's step budget was set for those, and its curve and benchmark cover them."""
    from graph.builder import persistent_graph
    from graph.config import run_config
    from graph.context import SessionContext
    from tradegraph.market.prices import refresh_changed

    symbol, days = new_symbol(), weekdays(date(2030, 1, 7), 8)
    insert = (
        "INSERT INTO daily_bars (symbol, day, open, high, low, close, volume) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    async with pool.connection() as conn:
        for i, day in enumerate(days[:5]):
            p = trend(i)
            await conn.execute(insert, (symbol, day, p, p + 1, p - 1, p, 1000))
    model = await make_model()
    request = input_for(model, symbols=[symbol], start=str(days[0]), end=str(days[-1]))
    graph, config = persistent_graph(pool), run_config(f"feed-{uuid.uuid4()}", bars_total=5)
    marked = []
    async for part in graph.astream(
        request, config, context=SessionContext(pool=pool), stream_mode="custom", version="v2"
    ):
        if part["data"].get("type") == "equity":
            marked.append(part["data"]["clock"][:10])
            if len(marked) == 2:  # three more days arrive mid-session, and this process sees them
                async with pool.connection() as conn:
                    for i, day in enumerate(days[5:], start=5):
                        p = trend(i)
                        await conn.execute(insert, (symbol, day, p, p + 1, p - 1, p, 1000))
                await refresh_changed(pool, [symbol])
    state = (await graph.aget_state(config)).values
    assert marked == [str(d) for d in days[:5]] and state["done"] and state["bars_total"] == 5
