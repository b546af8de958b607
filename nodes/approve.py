"""approve: pause for a person on each order above the approval threshold.

Only `interrupt()` and pure bookkeeping happen here, because the node re-runs from its first line
on resume. What counts as an answer, and what it does to the verdict, is `tradegraph.approval`.
"""

from typing import Any

from langgraph.types import interrupt

from graph.state import SessionState
from tradegraph.approval import apply_answer, approval_request
from tradegraph.orders import Verdict


def approve(state: SessionState) -> dict[str, Any]:
    """Resolve every `needs_approval` verdict with a person's answer."""
    resolved: list[Verdict] = []
    for verdict in state["verdicts"]:
        if verdict["status"] != "needs_approval":
            resolved.append(verdict)
            continue
        request = approval_request(
            verdict, model_id=state["model_id"], signature=state["signature"], clock=state["clock"]
        )
        resolved.append(apply_answer(verdict, interrupt(request)))
    return {"verdicts": resolved}
