"""The one built-in assistant of the `trading_session` graph, as langgraph-api names and shows it."""

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from graph import GRAPH_ID

ASSISTANT_ID = uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), GRAPH_ID)
"""The id langgraph-api gives a graph's built-in assistant."""
STARTED_AT = datetime.now(UTC).isoformat()
GRAPH_METADATA = {"graph_id": GRAPH_ID, "assistant_id": str(ASSISTANT_ID)}
"""What every run and thread of this graph carries in its metadata, as upstream records it."""


def resolve_assistant(assistant_id: str) -> uuid.UUID:
    """The assistant's UUID from its id or graph name; 404 for anything else."""
    if assistant_id in (GRAPH_ID, str(ASSISTANT_ID)):
        return ASSISTANT_ID
    raise HTTPException(404, f"assistant {assistant_id!r} not found; the only graph here is {GRAPH_ID!r}")


def assistant_json() -> dict[str, Any]:
    """The built-in assistant, as langgraph-api shows it."""
    return {
        "assistant_id": str(ASSISTANT_ID),
        "graph_id": GRAPH_ID,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "name": GRAPH_ID,
        "description": "An AI trading session: decide -> risk_check -> execute over market bars.",
        "version": 1,
        "created_at": STARTED_AT,
        "updated_at": STARTED_AT,
    }
