"""The trading-session graph. `graph` is compiled without a checkpointer for `langgraph dev`/Studio."""

from graph.builder import GRAPH_ID, build_graph

graph = build_graph().compile()
graph.name = GRAPH_ID

__all__ = ["GRAPH_ID", "build_graph", "graph"]
