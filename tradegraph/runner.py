"""Compile the session graph over Postgres and build run configs (used by the CLI and the server)."""

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph.state import CompiledStateGraph

from graph.builder import GRAPH_ID, build_graph, recursion_limit
from tradegraph.database import Pool
from tradegraph.market.prices import session_times
from tradegraph.session_request import SessionRequest


def persistent_graph(pool: Pool) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The session graph checkpointed in Postgres through the app's pool."""
    compiled = build_graph().compile(checkpointer=AsyncPostgresSaver(pool))
    compiled.name = GRAPH_ID
    return compiled


async def bars_in(pool: Pool, request: SessionRequest) -> int:
    """How many bars a checked request will run."""
    return len(await session_times(pool, request.symbols, request.start, request.end, request.mode))


def run_config(thread_id: str, *, bars_total: int, **configurable: Any) -> RunnableConfig:
    """Config for one run on a thread, with a recursion limit that fits the session."""
    return {
        "configurable": {"thread_id": thread_id, **configurable},
        "recursion_limit": recursion_limit(bars_total),
    }
