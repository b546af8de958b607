"""`tradegraph arena`: several of your bots on the same market at once, on a server, ranked.

Starts an arena (`POST /arenas`), shows one progress bar per bot while the sessions run (polling
`GET /arenas/{id}`), prints the standings best return first, and can plot every bot's equity curve
with buy-and-hold on one chart.
"""

import asyncio
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError
from rich.console import Console
from rich.table import Table

from cli.plot import plot_arena
from cli.progress import session_progress
from cli.watch import amount
from server.store.runs import ACTIVE
from tradegraph.reports import CurvePoint

POLL_S = 0.5


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}%"


def drawdown(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


async def run_arena(
    *, url: str, api_key: str, signatures: list[str], session: dict[str, Any], plot: Path | None
) -> int:
    """Run the arena to its end; 0 when every session succeeded, 1 otherwise, 2 for bad input."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped or logged: the table is not squeezed to 80 columns
    http = get_client(url=url, api_key=api_key).http
    try:
        models = await http.get("/models")
        ids = {m["signature"]: m["id"] for m in models}
        missing = [s for s in signatures if s not in ids]
        if missing:
            console.print(
                f"[red]no bot with signature {', '.join(missing)}; yours: {', '.join(ids) or 'none'}"
            )
            return 2
        arena = await http.post("/arenas", json={"models": [ids[s] for s in signatures], "input": session})
        board = await _follow(http, console, arena["arena_id"])
        if plot is not None:
            await _plot(http, board, plot)
            console.print(f"wrote {plot}")
    except APIStatusError as exc:
        console.print(f"[red]the server refused: {exc.response.status_code} {exc.response.text}")
        return 2
    console.print(standings_table(board))
    return 0 if all(s["status"] == "success" for s in board["standings"]) else 1


async def _follow(http: Any, console: Console, arena_id: str) -> dict[str, Any]:
    """One progress bar per bot until no session is pending or running; the final standings."""
    with session_progress(console) as progress:
        tasks: dict[int, Any] = {}
        while True:
            board: dict[str, Any] = await http.get(f"/arenas/{arena_id}")
            for row in board["standings"]:
                if row["model_id"] not in tasks:
                    tasks[row["model_id"]] = progress.add_task(
                        row["signature"], total=row["bars_total"], equity="-"
                    )
                progress.update(
                    tasks[row["model_id"]], completed=row["bars_done"], equity=amount(row["equity"])
                )
            if all(row["status"] not in ACTIVE for row in board["standings"]):
                return board
            await asyncio.sleep(POLL_S)


def standings_table(board: dict[str, Any]) -> Table:
    """The ranked standings as a terminal table."""
    table = Table(title=f"arena {board['arena_id']}")
    for column in (
        "#",
        "bot",
        "status",
        "equity",
        "return",
        "sharpe",
        "max drawdown",
        "trades",
        "buy & hold",
    ):
        table.add_column(column)
    for rank, row in enumerate(board["standings"], start=1):
        sharpe = "-" if row["sharpe"] is None else f"{row['sharpe']:.2f}"
        table.add_row(
            str(rank),
            row["signature"],
            row["status"],
            amount(row["equity"]),
            percent(row["total_return"]),
            sharpe,
            drawdown(row["max_drawdown"]),
            str(row["trades"]),
            percent(row["buy_and_hold_return"]),
        )
    return table


async def _plot(http: Any, board: dict[str, Any], path: Path) -> None:
    curves: dict[str, list[CurvePoint]] = {}
    for row in board["standings"]:
        figures = await http.get(
            f"/models/{row['model_id']}/performance", params={"thread_id": row["thread_id"]}
        )
        curves[row["signature"]] = [
            {
                "bar_time": datetime.fromisoformat(point["bar_time"]),
                "equity": Decimal(point["equity"]),
                "benchmark": Decimal(point["benchmark"]),
            }
            for point in figures["curve"]
        ]
    plot_arena(curves, path, title=f"arena {board['arena_id']}")
