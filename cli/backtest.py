"""`tradegraph backtest`: one session run in-process, with a live progress bar and a results table."""

import uuid
from decimal import Decimal
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from cli.progress import session_progress
from graph.builder import persistent_graph
from graph.checkpointer import batched_saves
from graph.config import run_config
from graph.context import SessionContext
from graph.events import SessionEvent
from graph.state import SessionInput, session_input
from tradegraph.accounts import ModelRow, create_model, create_user, user_by_name
from tradegraph.bootstrap import prepare_database
from tradegraph.database import Pool, database_url, make_pool
from tradegraph.limits import RiskLimits
from tradegraph.metrics import Performance
from tradegraph.reports import session_curve, session_performance
from tradegraph.session_request import InvalidSession, check_session_request

BACKTEST_USER = "backtest"
console = Console(stderr=True)


async def run_backtest(
    *, mode: str, start: str, end: str, symbols: str, decider: str, cash: Decimal, plot: Path | None
) -> int:
    """Run and report; returns the process exit code."""
    url = database_url()
    await prepare_database(url)
    pool = make_pool(url, max_size=4)
    await pool.open()
    try:
        try:
            request = await check_session_request(
                pool, {"mode": mode, "start": start, "end": end, "symbols": symbols, "decider": decider}
            )
        except InvalidSession as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 2
        model = await _backtest_model(pool, cash)
        thread_id = str(uuid.uuid4())
        total = len(await request.bar_times(pool))
        await _drive(
            pool, thread_id, total, session_input(request, model_id=model["id"], signature=model["signature"])
        )
        async with pool.connection() as conn:
            result = await session_performance(conn, thread_id=thread_id)
            curve = await session_curve(conn, thread_id=thread_id)
    finally:
        await pool.close()
    if result is None:
        console.print("[red]the session marked no bars[/red]")
        return 1
    print_results(result, thread_id=thread_id, signature=model["signature"])
    if plot:
        from cli.plot import plot_equity

        plot_equity(curve, plot, title=f"{', '.join(request.symbols)} {request.start}..{request.end}")
        console.print(f"equity curve written to {plot}")
    return 0


async def _backtest_model(pool: Pool, cash: Decimal) -> ModelRow:
    """A fresh model for this backtest with default limits (no approvals), owned by the `backtest` user."""
    async with pool.connection() as conn:
        user = await user_by_name(conn, name=BACKTEST_USER)
        if user is None:
            user, _ = await create_user(conn, name=BACKTEST_USER)
        signature = f"backtest-{uuid.uuid4().hex[:12]}"
        return await create_model(
            conn,
            user_id=user.id,
            name="backtest",
            signature=signature,
            initial_cash=cash,
            limits=RiskLimits(),
        )


async def _drive(pool: Pool, thread_id: str, total: int, start: SessionInput) -> None:
    """Stream the session to its end, updating the progress bar and reporting failed decisions."""
    graph = persistent_graph(pool)
    config = run_config(thread_id, bars_total=total)
    with session_progress(console) as progress:
        task = progress.add_task("bars", total=total, equity="-")
        async with batched_saves(graph.checkpointer, thread_id, durability="async"):  # LangGraph's default
            async for part in graph.astream(
                start, config, context=SessionContext(pool=pool), stream_mode="custom", version="v2"
            ):
                _show(cast(SessionEvent, part["data"]), progress, task)  # custom mode: node events only


def _show(event: SessionEvent, progress: Progress, task: TaskID) -> None:
    if event["type"] == "equity":
        progress.update(task, completed=event["bar_index"] + 1, equity=event["equity"])
    elif event["type"] == "decision" and event["status"] == "failed":
        progress.console.print(f"[yellow]{event['clock']} decision failed:[/yellow] {event['reason']}")


def print_results(result: Performance, *, thread_id: str, signature: str) -> None:
    """The results table, on stdout."""
    table = Table(title=f"backtest {signature} (thread {thread_id})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    sharpe = f"{result.sharpe:.2f}" if result.sharpe is not None else "n/a"
    for name, value in (
        ("bars", str(result.bars)),
        ("start equity", result.start_equity),
        ("end equity", result.end_equity),
        ("total return", f"{result.total_return:.2%}"),
        ("sharpe", sharpe),
        ("max drawdown", f"{result.max_drawdown:.2%}"),
        ("trades", str(result.trades)),
        ("buy-and-hold return", f"{result.buy_and_hold_return:.2%}"),
    ):
        table.add_row(name, value)
    Console().print(table)
