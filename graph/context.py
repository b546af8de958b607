"""Per-run dependencies: passed on every invocation and resume, never checkpointed, never identity."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime

from tradegraph.database import Pool, default_pool
from tradegraph.ledger import BarStart


@dataclass
class SessionContext:
    """What nodes need besides state: a database pool and, optionally, a chat model to use."""

    pool: Pool | None = None
    """The app's pool; None uses the process default (e.g. under `langgraph dev`)."""

    chat_model: BaseChatModel | None = None
    """Overrides the configured ChatOpenAI (tests pass a fake chat model here)."""

    on_llm_call: Callable[[float, bool], None] | None = None
    """Told the seconds and the failure of each model call of the `llm` decider (for the server's metrics)."""

    give_way: Callable[[], Awaitable[None]] | None = None
    """Awaited before each bar (`decide`, and between the quiet bars of `hold`): the server lets
    sessions that have not shown a bar yet go first (`server/runs/priority.py`)."""


async def pool_of(context: SessionContext | None) -> Pool:
    """The pool to use for this run."""
    if context is not None and context.pool is not None:
        return context.pool
    return await default_pool()


def thread_of(runtime: Runtime[SessionContext]) -> str | None:
    """The session's thread id; None when the graph runs without a thread (no checkpointer)."""
    info = runtime.execution_info
    return info.thread_id if info and info.thread_id else None


def ledger_thread_of(runtime: Runtime[SessionContext]) -> str:
    """The thread id orders are booked under: the thread, else the run id (a thread-less run)."""
    info = runtime.execution_info
    return (info.thread_id or info.run_id or "unthreaded") if info else "unthreaded"


def bar_start(runtime: Runtime[SessionContext], *, start_count: int, clock: datetime) -> BarStart:
    """The ledger as of this session's bar at `clock` (its own fills from that bar on left out)."""
    return BarStart(thread_id=ledger_thread_of(runtime), start_count=start_count, clock=clock)


def after_bar(runtime: Runtime[SessionContext], *, start_count: int, clock: datetime) -> BarStart:
    """The ledger once this session's bar at `clock` is booked (later bars' fills left out)."""
    return bar_start(runtime, start_count=start_count, clock=clock + timedelta(microseconds=1))


async def give_way(context: SessionContext | None) -> None:
    """Let sessions that have not shown a bar yet go first, when the server asks for it."""
    if context is not None and context.give_way is not None:
        await context.give_way()
