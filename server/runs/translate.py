"""Turn LangGraph v2 stream parts into protocol SSE events (name, data)."""

from collections.abc import Iterator, Mapping
from typing import Any, cast

from langgraph.types import StreamMode

STREAM_MODES = ("values", "updates", "custom", "messages-tuple", "messages", "debug", "tasks", "checkpoints")
GRAPH_MODE: dict[str, StreamMode] = {"messages-tuple": "messages", "messages": "messages"}


def graph_modes(requested: list[str]) -> list[StreamMode]:
    """The `astream` modes that serve the requested protocol modes."""
    # Every other protocol mode (checked against STREAM_MODES on the way in) is a graph mode as is.
    return sorted({GRAPH_MODE.get(mode, cast(StreamMode, mode)) for mode in requested})


def to_events(part: Mapping[str, Any], requested: list[str]) -> Iterator[tuple[str, Any]]:
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
