"""Equity curve against buy-and-hold, as a PNG (matplotlib, headless)."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tradegraph.reports import CurvePoint  # noqa: E402


def plot_arena(curves: dict[str, list[CurvePoint]], path: Path, *, title: str) -> None:
    """Every bot's equity curve on one chart, with the buy-and-hold of the first one (same market)."""
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    for name, curve in curves.items():
        times: Any = [p["bar_time"] for p in curve]
        ax.plot(times, [float(p["equity"]) for p in curve], label=name)
    first = next((curve for curve in curves.values() if curve), [])
    if first:
        times = [p["bar_time"] for p in first]
        ax.plot(
            times, [float(p["benchmark"]) for p in first], label="buy and hold", color="gray", linestyle="--"
        )
    _finish(fig, ax, path, title=title)


def plot_equity(curve: list[CurvePoint], path: Path, *, title: str) -> None:
    """Two labelled lines, dates on the x axis."""
    times: Any = [p["bar_time"] for p in curve]  # matplotlib plots datetimes; its stubs only say floats
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    ax.plot(times, [float(p["equity"]) for p in curve], label="strategy equity", color="#1f77b4")
    ax.plot(
        times, [float(p["benchmark"]) for p in curve], label="buy and hold", color="#ff7f0e", linestyle="--"
    )
    _finish(fig, ax, path, title=title)


def _finish(fig: Any, ax: Any, path: Path, *, title: str) -> None:
    """Title, labelled axes with dates, grid and legend; written to `path` and closed."""
    ax.set_title(title)
    ax.set_xlabel("date")
    ax.set_ylabel("equity")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
