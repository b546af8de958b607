"""Turn LangGraph v2 stream parts into protocol SSE events (name, data)."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from langgraph.types import StreamMode

GRAPH_MODE: dict[str, StreamMode] = {"messages-tuple": "messages", "messages": "messages"}
"""Protocol modes whose graph mode has another name; every other protocol mode is a graph mode as is."""


def graph_modes(requested: Sequence[str]) -> list[StreamMode]:
    """The `astream` modes that serve the requested protocol modes (validated by `schemas.StreamMode`)."""
    return sorted({GRAPH_MODE.get(mode, cast(StreamMode, mode)) for mode in requested})


def to_events(part: Mapping[str, Any], requested: Sequence[str]) -> Iterator[tuple[str, Any]]:
    """Protocol events for one stream part (an interrupt also shows in `values`, as upstream does)."""
    kind, data = part["type"], part["data"]
    if kind == "values":
        if "values" in requested:
            interrupts = part.get("interrupts") or ()
            yield "values", ({**data, "__interrupt__": list(interrupts)} if interrupts else data)
    elif kind == "messages":
        message, metadata = data
        if "messages-tuple" in requested:
            yield "messages", [message, metadata]
        elif "messages" in requested:
            yield "messages/partial", [message]
    elif kind in requested:
        yield kind, data
