"""The `tradegraph` command: migrate, serve, worker, users, models, backtest, sessions watch."""

import asyncio
import logging
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from cli.data import data_app
from cli.keys import keys_app, webhook_secret
from tradegraph.limits import RiskLimits

app = typer.Typer(
    help="AI trading sessions as LangGraph graphs.", no_args_is_help=True, pretty_exceptions_enable=False
)
users_app = typer.Typer(help="Manage users and their API keys.", no_args_is_help=True)
models_app = typer.Typer(help="Manage trading models.", no_args_is_help=True)
sessions_app = typer.Typer(help="Follow sessions on a running server.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")
app.add_typer(sessions_app, name="sessions")
app.add_typer(data_app, name="data")


def _setup_logging() -> None:
    """Text lines, or one JSON object per line with `TRADEGRAPH_LOG_FORMAT=json`."""
    from tradegraph.settings import get_settings

    handler = logging.StreamHandler()
    if get_settings().log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("procrastinate").setLevel(logging.WARNING)


@app.command()
def migrate() -> None:
    """Apply database migrations, create checkpoint tables and load the market data."""
    from tradegraph.bootstrap import prepare_database
    from tradegraph.database import database_url

    _setup_logging()
    asyncio.run(prepare_database(database_url()))
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Run slots executed in this process (default TRADEGRAPH_WORKERS, 100; 0: API only)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API with in-process run workers."""
    from server.main import serve as run_server

    _setup_logging()
    run_server(host=host, port=port, workers=workers)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Runs executed at once (default TRADEGRAPH_WORKERS, 100).")
    ] = None,
) -> None:
    """Run extra run workers (no HTTP)."""
    import uvloop

    from server.worker_main import run_worker
    from tradegraph.settings import get_settings

    _setup_logging()
    uvloop.run(run_worker(concurrency=concurrency or get_settings().workers))  # the loop `serve` runs on


@app.command()
def retention(
    now: Annotated[
        bool, typer.Option("--now", help="Retention 0: prune every settled session and all old events.")
    ] = False,
    events_days: Annotated[
        float | None, typer.Option(help="Keep finished runs' stream events this long (default: settings).")
    ] = None,
    checkpoint_days: Annotated[
        float | None, typer.Option(help="Keep settled sessions' per-step checkpoints this long.")
    ] = None,
) -> None:
    """Run one retention sweep now (the server runs one every 10 minutes)."""
    from server.sweep_main import sweep_once
    from tradegraph.settings import get_settings

    _setup_logging()
    settings = get_settings()
    if events_days is None:
        events_days = settings.events_retention_days
    if checkpoint_days is None:
        checkpoint_days = settings.checkpoint_retention_days
    if now:
        events_days = checkpoint_days = 0
    report = asyncio.run(sweep_once(events_days=events_days, checkpoint_days=checkpoint_days))
    typer.echo(
        f"threads deleted: {report.threads_deleted}, threads pruned: {report.threads_pruned}, "
        f"stream events deleted: {report.events_deleted}"
    )


@users_app.command("create")
def users_create(
    name: str,
    admin: Annotated[bool, typer.Option(help="An admin may also write market data.")] = False,
) -> None:
    """Create a user; prints the new API key alone on the last line (shown only this once)."""
    from cli.accounts import create_user

    user_id, key = asyncio.run(create_user(name, admin=admin))
    role = "admin" if admin else "user"
    typer.echo(f"created {role} {name!r} (id {user_id}); store this API key now, it is not shown again:")
    typer.echo(key)


users_app.add_typer(keys_app, name="keys")
users_app.command("webhook-secret")(webhook_secret)


@models_app.command("create")
def models_create(
    user: Annotated[str, typer.Option(help="Owner's user name.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    signature: Annotated[str, typer.Option(help="Unique signature per user.")],
    initial_cash: Annotated[str, typer.Option(help="Starting cash.")] = "100000",
    approval_notional: Annotated[str | None, typer.Option(help="Pause orders above this notional.")] = None,
    llm_endpoint: Annotated[
        str | None, typer.Option(help="The bot's AI: a configured endpoint (TRADEGRAPH_LLM_ENDPOINTS).")
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name sent to that endpoint.")] = None,
    llm_temperature: Annotated[float, typer.Option(help="Sampling temperature, 0-2.")] = 0.0,
    llm_instructions: Annotated[str, typer.Option(help="Added to the bot's system prompt.")] = "",
    shorting: Annotated[bool, typer.Option(help="Allow short selling on margin (default terms).")] = False,
    commission_per_share: Annotated[str, typer.Option(help="Commission per share filled.")] = "0",
    commission_min: Annotated[str, typer.Option(help="Least commission of a fill.")] = "0",
    slippage_bps: Annotated[str, typer.Option(help="Market and stop fills this many bps worse.")] = "0",
    take_profit_pct: Annotated[
        str | None, typer.Option(help="rule decider: take-profit exit, % above entry.")
    ] = None,
    stop_loss_pct: Annotated[
        str | None, typer.Option(help="rule decider: stop-loss exit, % below entry.")
    ] = None,
) -> None:
    """Create a trading model for a user; prints its id."""
    from pydantic import ValidationError

    from cli.accounts import create_model
    from tradegraph.accounts import BotTerms
    from tradegraph.ai import AIChoiceInput, UnknownEndpoint, checked_choice
    from tradegraph.terms import Costs, Shorting, Strategy

    limits = RiskLimits(approval_notional=Decimal(approval_notional) if approval_notional else None)
    llm = None
    if llm_endpoint or llm_model:
        if not (llm_endpoint and llm_model):
            raise typer.BadParameter("give both --llm-endpoint and --llm-model")
        try:
            raw = AIChoiceInput(
                endpoint=llm_endpoint,
                model=llm_model,
                temperature=llm_temperature,
                instructions=llm_instructions,
            )
            llm = checked_choice(raw)
        except (ValidationError, UnknownEndpoint) as exc:
            raise typer.BadParameter(str(exc)) from exc
    try:
        terms = BotTerms(
            shorting=Shorting(enabled=shorting),
            costs=Costs(
                commission_per_share=Decimal(commission_per_share),
                commission_min=Decimal(commission_min),
                slippage_bps=Decimal(slippage_bps),
            ),
            strategy=Strategy(
                take_profit_pct=Decimal(take_profit_pct) if take_profit_pct else None,
                stop_loss_pct=Decimal(stop_loss_pct) if stop_loss_pct else None,
            ),
        )
    except (ValidationError, ArithmeticError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    model = asyncio.run(create_model(user, name, signature, Decimal(initial_cash), limits, llm, terms))
    typer.echo(f"created model {model['id']} ({model['signature']}) for {user}")
    typer.echo(model["id"])


@app.command()
def backtest(
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    symbols: Annotated[str, typer.Option(help="Comma-separated tickers, e.g. AAPL,MSFT,IBM.")],
    mode: Annotated[str, typer.Option(help="daily or intraday.")] = "daily",
    decider: Annotated[str, typer.Option(help="rule or llm.")] = "rule",
    cash: Annotated[str, typer.Option(help="Starting cash of the backtest model.")] = "100000",
    plot: Annotated[
        Path | None, typer.Option(help="Write the equity curve vs buy-and-hold to this PNG.")
    ] = None,
) -> None:
    """Run a session in-process with a progress bar, then print its performance."""
    from cli.backtest import run_backtest

    code = asyncio.run(
        run_backtest(
            mode=mode, start=start, end=end, symbols=symbols, decider=decider, cash=Decimal(cash), plot=plot
        )
    )
    raise typer.Exit(code)


@app.command()
def arena(
    models: Annotated[str, typer.Option(help="Comma-separated signatures of your bots.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    symbols: Annotated[str, typer.Option(help="Comma-separated tickers, e.g. AAPL,MSFT,IBM.")],
    mode: Annotated[str, typer.Option(help="daily or intraday.")] = "daily",
    decider: Annotated[str, typer.Option(help="rule or llm.")] = "rule",
    plot: Annotated[Path | None, typer.Option(help="Write every bot's equity curve to this PNG.")] = None,
    url: Annotated[str, typer.Option(envvar="TRADEGRAPH_URL", help="Server URL.")] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(envvar="TRADEGRAPH_API_KEY", help="Your API key.")] = "",
) -> None:
    """Run several of your bots on the same market at once on a server, and rank them."""
    from cli.arena import run_arena

    session = {"mode": mode, "start": start, "end": end, "symbols": symbols.split(","), "decider": decider}
    signatures = [s.strip() for s in models.split(",") if s.strip()]
    raise typer.Exit(
        asyncio.run(run_arena(url=url, api_key=api_key, signatures=signatures, session=session, plot=plot))
    )


@sessions_app.command("watch")
def sessions_watch(
    thread_id: str,
    url: Annotated[str, typer.Option(envvar="TRADEGRAPH_URL", help="Server URL.")] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(envvar="TRADEGRAPH_API_KEY", help="Your API key.")] = "",
) -> None:
    """Follow a running session on the server in the terminal."""
    from cli.watch import watch

    raise typer.Exit(asyncio.run(watch(url=url, api_key=api_key, thread_id=thread_id)))


if __name__ == "__main__":
    app()
