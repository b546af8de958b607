"""`tradegraph backtest`: one session run in-process, with a live progress bar and a results table."""

import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from langgraph.types import Command
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from graph.context import SessionContext
from tradegraph.accounts import create_model, create_user, user_by_name
from tradegraph.bootstrap import prepare_database
from tradegraph.database import database_url, make_pool
from tradegraph.limits import RiskLimits
from tradegraph.metrics import Performance
from tradegraph.progress import session_progress
from tradegraph.reports import session_curve, session_performance
from tradegraph.runner import bars_in, persistent_graph, run_config
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
        total = await bars_in(pool, request)
        session_input = request.session_input(model_id=model["id"], signature=model["signature"])
        await _drive(pool, thread_id, total, session_input)
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
        from tradegraph.plot import plot_equity

        plot_equity(curve, plot, title=f"{', '.join(request.symbols)} {request.start}..{request.end}")
        console.print(f"equity curve written to {plot}")
    return 0


async def _backtest_model(pool: Any, cash: Decimal) -> dict[str, Any]:
    """A fresh model for this backtest, owned by the local `backtest` user."""
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


async def _drive(pool: Any, thread_id: str, total: int, session_input: dict[str, Any]) -> None:
    """Stream the session, updating the progress bar; ask about paused orders when interactive."""
    graph = persistent_graph(pool)
    config = run_config(thread_id, bars_total=total)
    context = SessionContext(pool=pool)
    payload: Any = session_input
    with session_progress(console) as progress:
        task = progress.add_task("bars", total=total, equity="-")
        while True:
            async for part in graph.astream(
                payload, config, context=context, stream_mode="custom", version="v2"
            ):
                event: Any = part["data"]  # a custom part: whatever a node wrote to the stream
                if isinstance(event, dict) and event.get("type") == "equity":
                    progress.update(task, completed=event["bar_index"] + 1, equity=event["equity"])
                elif (
                    isinstance(event, dict)
                    and event.get("type") == "decision"
                    and event["status"] == "failed"
                ):
                    progress.console.print(
                        f"[yellow]{event['clock']} decision failed:[/yellow] {event['reason']}"
                    )
            state = await graph.aget_state(config)
            if not state.interrupts:
                return
            payload = Command(resume=_ask(state.interrupts[0].value, progress))


def _ask(request: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Approval answer from the terminal; non-interactive runs reject (never approve blindly)."""
    summary = (
        f"{request['clock']} {request['side']} {request['quantity']} {request['symbol']} "
        f"@ {request['price']} = {request['notional']} ({request['reason']})"
    )
    if not sys.stdin.isatty():
        progress.console.print(f"[yellow]rejected (not interactive):[/yellow] {summary}")
        return {"action": "reject"}
    answer = progress.console.input(f"approve {summary}? [y]es / [n]o / quantity: ").strip().lower()
    if answer.isdigit():
        return {"action": "approve", "quantity": int(answer)}
    return {"action": "approve" if answer in ("y", "yes") else "reject"}


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
