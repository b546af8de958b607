"""The one way to build a run's LangGraph config, for the server's runs and the CLI's backtests."""

from typing import Any
from uuid import UUID

from langchain_core.runnables import RunnableConfig

from graph.state import STEPS_PER_BAR

SETUP_STEPS = 10
"""Steps besides the bars: `start`, and room for a resume that re-runs the step it stopped in."""


def recursion_limit(bars_total: int) -> int:
    """Steps a session of `bars_total` bars may take (STEPS_PER_BAR for each, plus set-up)."""
    return STEPS_PER_BAR * max(bars_total, 1) + SETUP_STEPS


def run_config(
    thread_id: str,
    *,
    bars_total: int,
    run_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
    configurable: dict[str, Any] | None = None,
    checkpoint_id: str | None = None,
) -> RunnableConfig:
    """Config for one run on a thread, with a step budget that fits the bars it will run.

    `run_id` makes a retried run re-enter the same LangGraph run (and continue from its last
    checkpoint); `checkpoint_id` starts from an older checkpoint (a fork or a replay).
    """
    config: RunnableConfig = {
        "configurable": {
            **(configurable or {}),
            "thread_id": thread_id,
            **({"checkpoint_id": checkpoint_id} if checkpoint_id else {}),
        },
        "recursion_limit": recursion_limit(bars_total),
    }
    if metadata is not None:
        config["metadata"] = metadata
    if run_id is not None:
        config["run_id"] = run_id
    return config


def thread_config(thread_id: str | UUID, checkpoint_id: str | None = None) -> RunnableConfig:
    """A config naming a thread (and optionally one of its checkpoints), for reading or updating state."""
    configurable: dict[str, Any] = {"thread_id": str(thread_id)}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}
