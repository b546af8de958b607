"""`tradegraph data import FILE.csv`: check a CSV of OHLCV bars and upsert it, all or nothing.

Bad rows are listed by file line on stderr and nothing is written (exit code 1); gaps and skipped
rows are warnings; then one line per symbol says what was loaded.
"""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from tradegraph.market.csv_import import ImportPlan
    from tradegraph.market.prices import Mode
    from tradegraph.market.store import SymbolLoad

data_app = typer.Typer(help="Bring in your own market data.", no_args_is_help=True)
ERRORS_SHOWN = 50
WARNINGS_SHOWN = 20


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _report_problems(plan: "ImportPlan", path: Path) -> None:
    for warning in plan.warnings[:WARNINGS_SHOWN]:
        typer.echo(f"warning: {warning}", err=True)
    if len(plan.warnings) > WARNINGS_SHOWN:
        typer.echo(f"warning: ... and {len(plan.warnings) - WARNINGS_SHOWN} more", err=True)
    for error in plan.errors[:ERRORS_SHOWN]:
        typer.echo(f"{path.name}: line {error.row}: {error.message}", err=True)
    if len(plan.errors) > ERRORS_SHOWN:
        typer.echo(f"... and {len(plan.errors) - ERRORS_SHOWN} more bad rows", err=True)


def _describe(load: "SymbolLoad", mode: str) -> str:
    if mode == "daily":
        first, last = load.first.strftime("%Y-%m-%d"), load.last.strftime("%Y-%m-%d")
    else:  # labelled by the minute's start, as in the file (stored by its close)
        first, last = ((t - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M") for t in (load.first, load.last))
    return (
        f"{load.symbol}: {load.rows} {mode} bars {first} .. {last}"
        f" ({load.inserted} inserted, {load.updated} updated, {load.unchanged} unchanged)"
    )


async def _write(plan: "ImportPlan") -> list["SymbolLoad"]:
    import psycopg
    from psycopg.rows import dict_row

    from tradegraph.bootstrap import prepare_database
    from tradegraph.database import database_url
    from tradegraph.market.store import write_bars

    url = database_url()
    await prepare_database(url)
    connect = psycopg.AsyncConnection.connect(url, row_factory=dict_row)
    async with await connect as conn, conn.transaction():
        return await write_bars(conn, bars=plan.bars, mode=plan.mode)


@data_app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CSV of OHLCV bars.")],
    symbol: Annotated[
        str | None, typer.Option(help="The file's symbol (default: a Symbol column, else the file name).")
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="daily or intraday (default: intraday for a Datetime column).")
    ] = None,
) -> None:
    """Import daily or minute OHLCV bars from a CSV export (Yahoo-style columns), all or nothing."""
    from tradegraph.market.csv_import import UnreadableFile, plan_import, read_csv, symbol_from_path

    if mode not in (None, "daily", "intraday"):
        raise _fail(f"--mode must be daily or intraday, got {mode!r}")
    try:
        header, rows = read_csv(file)
        if symbol is None and not any(h.strip().lower() in ("symbol", "ticker") for h in header):
            symbol = symbol_from_path(file)
        plan = plan_import(header, rows, symbol=symbol, mode=cast("Mode | None", mode))
    except (UnreadableFile, UnicodeDecodeError) as exc:
        raise _fail(f"{file.name}: {exc}") from exc
    _report_problems(plan, file)
    if plan.errors:
        raise _fail(f"{len(plan.errors)} bad row(s) in {file.name}; nothing was written")
    if not plan.bars:
        raise _fail(f"{file.name} has no bars to import")
    for load in asyncio.run(_write(plan)):
        typer.echo(_describe(load, plan.mode))
