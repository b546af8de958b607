"""Helpers to run sessions against the real database the way the app does."""

import uuid
from typing import Any

from langgraph.types import Command
from psycopg_pool import AsyncConnectionPool

from graph.builder import persistent_graph
from graph.checkpointer import batched_saves
from graph.config import run_config
from graph.context import SessionContext


def input_for(model: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A session request for a model, with identity from its database row."""
    return {
        "model_id": model["id"],
        "signature": model["signature"],
        "mode": "daily",
        "start": "2012-01-03",
        "end": "2012-03-30",
        "symbols": ["AAPL", "MSFT", "IBM"],
        "decider": "rule",
        **overrides,
    }


async def run_session(
    pool: AsyncConnectionPool,
    payload: dict[str, Any] | Command[Any] | None,
    *,
    thread_id: str | None = None,
    context: SessionContext | None = None,
    stream_mode: Any = "custom",
    batched: bool = False,
) -> tuple[str, list[Any]]:
    """Stream a session (or its resumption) to the end or the next interrupt; returns thread and parts.
    `batched`: its checkpoints saved in batches, as the run executor saves them."""
    thread_id = thread_id or str(uuid.uuid4())
    graph = persistent_graph(pool)
    async with batched_saves(graph.checkpointer, thread_id, durability="async" if batched else "sync"):
        parts = [
            part
            async for part in graph.astream(
                payload,
                run_config(thread_id, bars_total=400),
                context=context or SessionContext(pool=pool),
                stream_mode=stream_mode,
                version="v2",
            )
        ]
    return thread_id, parts


async def state_of(pool: AsyncConnectionPool, thread_id: str) -> Any:
    """The thread's latest StateSnapshot."""
    return await persistent_graph(pool).aget_state(run_config(thread_id, bars_total=1))


def events(parts: list[Any], kind: str) -> list[dict[str, Any]]:
    """Custom events of one type."""
    return [p["data"] for p in parts if p["type"] == "custom" and p["data"].get("type") == kind]
