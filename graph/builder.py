"""Assemble the session graph.

start -> decide (<-> tools) -> risk_check -> [approve] -> execute -> next bar; a `rule` session with
an empty book holds through its quiet bars in one `hold` step; after the last bar, reflect (the
session's reflection in the bot's memory).
"""

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.types import RetryPolicy

from graph.checkpointer import ResilientPostgresSaver
from graph.context import SessionContext
from graph.routes import after_decide, after_execute, after_hold, after_risk_check
from graph.state import SessionInput, SessionState
from nodes.approve import approve
from nodes.decide import decide
from nodes.execute import execute
from nodes.hold import hold
from nodes.reflect import reflect
from nodes.risk_check import risk_check
from nodes.start import start
from tools import TRADING_TOOLS
from tradegraph.database import Pool, is_disconnect

GRAPH_ID = "trading_session"
DATABASE_RETRY = RetryPolicy(max_interval=5.0, max_attempts=10, retry_on=is_disconnect)
"""A node that loses the database is run again once it answers (about 30 s in all): every node is
safe to re-run, and `execute` books each order once whatever the attempt."""


def build_graph() -> StateGraph[SessionState, SessionContext, SessionInput, SessionState]:
    """The uncompiled builder; compile it with or without a checkpointer."""
    builder = StateGraph(SessionState, context_schema=SessionContext, input_schema=SessionInput)
    builder.add_node("start", start, retry_policy=DATABASE_RETRY)
    builder.add_node("decide", decide, retry_policy=DATABASE_RETRY)
    builder.add_node("tools", ToolNode(TRADING_TOOLS, handle_tool_errors=True), retry_policy=DATABASE_RETRY)
    builder.add_node("risk_check", risk_check, retry_policy=DATABASE_RETRY)
    builder.add_node("approve", approve, retry_policy=DATABASE_RETRY)
    builder.add_node("execute", execute, retry_policy=DATABASE_RETRY)
    builder.add_node("hold", hold, retry_policy=DATABASE_RETRY)
    builder.add_node("reflect", reflect, retry_policy=DATABASE_RETRY)
    builder.add_edge(START, "start")
    builder.add_edge("start", "decide")
    builder.add_conditional_edges("decide", after_decide, ["tools", "risk_check"])
    builder.add_edge("tools", "decide")
    builder.add_conditional_edges("risk_check", after_risk_check, ["approve", "execute"])
    builder.add_edge("approve", "execute")
    builder.add_conditional_edges("execute", after_execute, ["hold", "decide", "reflect"])
    builder.add_conditional_edges("hold", after_hold, ["decide", "reflect"])
    builder.add_edge("reflect", END)
    return builder


def persistent_graph(pool: Pool) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The session graph checkpointed in Postgres through the app's pool (server, worker and CLI), with
    LangGraph's Postgres store for long-term memory (`runtime.store` in nodes and tools)."""
    compiled = build_graph().compile(
        checkpointer=ResilientPostgresSaver(pool), store=AsyncPostgresStore(pool)
    )
    compiled.name = GRAPH_ID
    return compiled
