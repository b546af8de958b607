"""Assemble the session graph.

start -> decide (<-> tools) -> risk_check -> [approve] -> execute -> next bar.
"""

from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

from graph.context import SessionContext
from graph.routes import after_decide, after_execute, after_risk_check
from graph.state import SessionInput, SessionState
from nodes.approve import approve
from nodes.decide import decide
from nodes.execute import execute
from nodes.risk_check import risk_check
from nodes.start import start
from tools import TRADING_TOOLS
from tradegraph.database import Pool

GRAPH_ID = "trading_session"


def build_graph() -> StateGraph[SessionState, SessionContext, SessionInput, SessionState]:
    """The uncompiled builder; compile it with or without a checkpointer."""
    builder = StateGraph(SessionState, context_schema=SessionContext, input_schema=SessionInput)
    builder.add_node("start", start)
    builder.add_node("decide", decide)
    builder.add_node("tools", ToolNode(TRADING_TOOLS, handle_tool_errors=True))
    builder.add_node("risk_check", risk_check)
    builder.add_node("approve", approve)
    builder.add_node("execute", execute)
    builder.add_edge(START, "start")
    builder.add_edge("start", "decide")
    builder.add_conditional_edges("decide", after_decide)
    builder.add_edge("tools", "decide")
    builder.add_conditional_edges("risk_check", after_risk_check)
    builder.add_edge("approve", "execute")
    builder.add_conditional_edges("execute", after_execute, {"decide": "decide", "__end__": END})
    return builder


def persistent_graph(pool: Pool) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The session graph checkpointed in Postgres through the app's pool (server, worker and CLI)."""
    compiled = build_graph().compile(checkpointer=AsyncPostgresSaver(pool))
    compiled.name = GRAPH_ID
    return compiled
