"""The terminal progress bar shared by `backtest` and `sessions watch`: bars, ETA, equity."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def session_progress(console: Console) -> Progress:
    """A progress display whose task carries an `equity` field."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("equity {task.fields[equity]}"),
        console=console,
    )
