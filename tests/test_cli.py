"""The command line as people run it: `users create`, `backtest --plot` and `sessions watch`."""

import asyncio
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import matplotlib.dates
import matplotlib.image
import numpy as np
import pytest

from cli import plot
from tradegraph.settings import PROJECT_ROOT

CLI = [sys.executable, "-m", "cli"]
STREAM_MODES = ["values", "updates", "custom"]
STRATEGY_BLUE, BENCHMARK_ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)
"""The line colours cli.plot draws with."""


def cli_env(database_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "TRADEGRAPH_ENV": "test"}
    for name in ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "TRADEGRAPH_API_KEY"):
        env.pop(name, None)
    return env


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=PROJECT_ROOT,
        env=cli_env(database_url),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 30) -> int:
    """How many pixels of an RGB(A) float image are within `tolerance` of a colour."""
    channels = (image[..., :3] * 255).astype(int)
    return int((np.abs(channels - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def test_users_create_prints_the_key_alone_on_the_last_line(database_url: str, server: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = run_cli(database_url, "users", "create", name)
    assert result.returncode == 0, result.stderr
    key = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"tg_[A-Za-z0-9_-]{40,}", key), result.stdout
    response = httpx.get(f"{server.url}/console/whoami", headers={"x-api-key": key})
    assert response.status_code == 200
    assert response.json()["name"] == name


def test_models_create_sets_the_bots_trading_terms(database_url: str, server: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    key = run_cli(database_url, "users", "create", name).stdout.splitlines()[-1]
    terms = ("--shorting", "--commission-per-share", "0.005", "--slippage-bps", "2", "--stop-loss-pct", "3")
    made = run_cli(
        database_url, "models", "create", "--user", name, "--name", "B", "--signature", "b1", *terms
    )
    assert made.returncode == 0, made.stderr
    model_id = made.stdout.splitlines()[-1]
    model = httpx.get(f"{server.url}/models/{model_id}", headers={"x-api-key": key}).json()
    assert (
        model["shorting"]["enabled"],
        model["costs"]["commission_per_share"],
        model["costs"]["slippage_bps"],
    ) == (
        True,
        "0.005",
        "2",
    )
    assert model["strategy"] == {"take_profit_pct": None, "stop_loss_pct": "3"}
    bad = run_cli(
        database_url,
        "models",
        "create",
        "--user",
        name,
        "--name",
        "C",
        "--signature",
        "c1",
        "--slippage-bps",
        "-1",
    )
    assert bad.returncode != 0 and "slippage_bps" in bad.stderr


def test_backtest_plot_writes_a_png_with_both_curves(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = run_cli(
        database_url,
        *("backtest", "--start", "2012-01-03", "--end", "2012-03-30", "--symbols", "AAPL,MSFT"),
        *("--plot", str(out)),
    )
    assert result.returncode == 0, result.stderr
    assert "buy-and-hold return" in result.stdout
    assert re.search(r"bars\s+│\s+62\s+│", result.stdout), result.stdout
    assert f"equity curve written to {out}" in result.stderr.replace("\n", "")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (500, 1000)
    assert pixels_near(image, STRATEGY_BLUE) > 300
    assert pixels_near(image, BENCHMARK_ORANGE) > 300


def test_plot_labels_the_two_curves_over_dates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    figures: list[Any] = []
    monkeypatch.setattr(plot.plt, "close", figures.append)
    curve = [
        {"bar_time": datetime(2012, 1, day, 21, tzinfo=UTC), "equity": Decimal(e), "benchmark": Decimal(b)}
        for day, e, b in ((3, "100000", "100000"), (4, "100500", "101000"), (5, "100250", "102000"))
    ]
    plot.plot_equity(curve, tmp_path / "curve.png", title="AAPL")
    (figure,) = figures
    (axes,) = figure.axes
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["strategy equity", "buy and hold"]
    equity, benchmark = axes.get_lines()
    assert list(equity.get_ydata()) == [100000.0, 100500.0, 100250.0]
    assert list(benchmark.get_ydata()) == [100000.0, 101000.0, 102000.0]
    assert axes.get_xlabel() == "date"
    first_x = equity.get_xdata(orig=False)[0]
    assert matplotlib.dates.num2date(first_x) == datetime(2012, 1, 3, 21, tzinfo=UTC)
    monkeypatch.undo()
    plot.plt.close(figure)


async def start_paused_session(client: httpx.AsyncClient, model_id: int) -> str:
    """A six-bar AAPL session that pauses on its first bar's ~9,870 buy."""
    thread = (await client.post("/threads", json={"metadata": {"model_id": model_id}})).json()
    session = {
        "mode": "daily",
        "start": "2012-01-03",
        "end": "2012-01-10",
        "symbols": ["AAPL"],
        "decider": "rule",
    }
    response = await client.post(
        f"/threads/{thread['thread_id']}/runs",
        json={"assistant_id": "trading_session", "input": session, "stream_mode": STREAM_MODES},
    )
    assert response.status_code == 200, response.text
    return str(thread["thread_id"])


async def read_until(stream: asyncio.StreamReader, lines: list[str], text: str) -> None:
    """Collect output lines until one contains `text`."""
    while not any(text in line for line in lines):
        line = await stream.readline()
        if not line:
            raise AssertionError(f"output ended before {text!r}:\n" + "".join(lines))
        lines.append(line.decode())


async def test_sessions_watch_follows_a_session_through_an_approval(
    database_url: str, server: Any, make_model: Any
) -> None:
    model = await make_model(approval_notional="1000")
    headers = {"x-api-key": model["api_key"]}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        thread_id = await start_paused_session(client, model["id"])
        watcher = await asyncio.create_subprocess_exec(
            *CLI,
            *("sessions", "watch", thread_id, "--url", server.url, "--api-key", model["api_key"]),
            cwd=PROJECT_ROOT,
            env=cli_env(database_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert watcher.stdout is not None
        lines: list[str] = []
        try:
            async with asyncio.timeout(60):
                await read_until(watcher.stdout, lines, "waiting for approval")
            resume = {"resume": {"action": "approve", "quantity": 20}}
            answer = await client.post(
                f"/threads/{thread_id}/runs",
                json={"assistant_id": "trading_session", "command": resume, "stream_mode": STREAM_MODES},
            )
            assert answer.status_code == 200, answer.text
            rest = await asyncio.wait_for(watcher.stdout.read(), 60)
            code = await asyncio.wait_for(watcher.wait(), 10)
        finally:
            if watcher.returncode is None:
                watcher.kill()
                await watcher.wait()
    output = "".join(lines) + rest.decode()
    assert code == 0, output
    assert f"following session {thread_id} (interrupted)" in output
    assert "decision (rule) ok: AAPL: SMA5 406.10 vs SMA20 394.26: uptrend, buy 24" in output
    assert "verdict  buy 24 AAPL notional 9,869.52: needs approval (approval_notional:" in output
    assert output.count("waiting for approval") == 1
    assert re.search(r"2012-01-03 16:00  FILL +buy 20 AAPL @ 411\.23 = 8,224\.60", output), output
    assert "bar 6 of 6" in output
    assert "session finished at 2012-01-10 16:00: equity" in output


def test_sessions_watch_with_a_wrong_key_says_so(database_url: str, server: Any) -> None:
    result = run_cli(
        database_url,
        *("sessions", "watch", str(uuid.uuid4()), "--url", server.url, "--api-key", "tg_wrong"),
    )
    assert result.returncode == 2
    assert "401 invalid API key" in result.stdout


async def test_arena_ranks_two_bots_and_plots_their_curves(
    database_url: str, server: Any, make_user: Any, make_model: Any, tmp_path: Path
) -> None:
    owner = await make_user()
    trader = await make_model(owner=owner)
    idle = await make_model(owner=owner, max_trades_per_day=0)
    out = tmp_path / "arena.png"
    args = ["--start", "2012-01-03", "--end", "2012-03-30", "--symbols", "AAPL,MSFT,IBM"]
    where = ["--url", server.url, "--api-key", owner["api_key"]]
    missing = await asyncio.to_thread(run_cli, database_url, "arena", "--models", "nobody", *args, *where)
    assert missing.returncode == 2 and "nobody" in missing.stdout, missing.stdout + missing.stderr

    models = f"{trader['signature']},{idle['signature']}"
    result = await asyncio.to_thread(
        run_cli, database_url, "arena", "--models", models, *args, "--plot", str(out), *where
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout[result.stdout.index("arena ") :]
    assert trader["signature"] in table and idle["signature"] in table
    rows = [line for line in table.splitlines() if trader["signature"] in line or idle["signature"] in line]
    assert len(rows) == 2 and all("success" in row for row in rows)
    image = matplotlib.image.imread(out)
    assert pixels_near(image, STRATEGY_BLUE) > 500, "the first bot's curve"
    assert pixels_near(image, BENCHMARK_ORANGE) > 500, "the second bot's curve"
