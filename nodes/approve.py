"""approve: pause for a person on each order above the approval threshold.

Only `interrupt()` and pure bookkeeping happen here, because the node re-runs from its first line
on resume. The answer is `{"action": "approve"}`, `{"action": "reject"}` or
`{"action": "approve", "quantity": N}` with 1 <= N <= the proposed quantity.
"""

from decimal import Decimal
from typing import Any

from langgraph.types import interrupt

from graph.state import SessionState
from tradegraph.money import as_text


class InvalidApproval(ValueError):
    """The resume value is not an approval answer."""


def parse_answer(answer: Any, proposed: int) -> int | None:
    """The approved quantity, or None for a rejection; raises InvalidApproval naming the problem."""
    if not isinstance(answer, dict) or answer.get("action") not in ("approve", "reject"):
        raise InvalidApproval('resume with {"action": "approve"|"reject", "quantity"?: N}')
    if answer["action"] == "reject":
        return None
    quantity = answer.get("quantity", proposed)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= proposed:
        raise InvalidApproval(f"quantity must be a whole number from 1 to {proposed}, got {quantity!r}")
    return quantity


def approval_request(verdict: dict[str, Any], state: SessionState) -> dict[str, Any]:
    """The interrupt payload a reviewer sees."""
    return {
        "kind": "order_approval",
        "model_id": state["model_id"],
        "signature": state["signature"],
        "clock": state["clock"],
        "proposal_id": verdict["proposal_id"],
        "symbol": verdict["symbol"],
        "side": verdict["side"],
        "quantity": verdict["quantity"],
        "price": verdict["price"],
        "notional": verdict["notional"],
        "limit": verdict["rule"],
        "reason": verdict["reason"],
    }


def approve(state: SessionState) -> dict[str, Any]:
    """Resolve every `needs_approval` verdict with a person's answer."""
    resolved: list[dict[str, Any]] = []
    for verdict in state["verdicts"]:
        if verdict["status"] != "needs_approval":
            resolved.append(dict(verdict))
            continue
        answer = interrupt(approval_request(dict(verdict), state))
        resolved.append(apply_answer(dict(verdict), answer))
    return {"verdicts": resolved}


def apply_answer(verdict: dict[str, Any], answer: Any) -> dict[str, Any]:
    """The verdict after the reviewer's answer (an unreadable answer counts as a rejection)."""
    proposed = int(verdict["quantity"])
    try:
        quantity = parse_answer(answer, proposed)
    except InvalidApproval as exc:
        return {
            **verdict,
            "status": "rejected",
            "rule": "human_approval",
            "reason": f"unreadable answer: {exc}",
        }
    if quantity is None:
        return {**verdict, "status": "rejected", "rule": "human_approval", "reason": "rejected by reviewer"}
    note = (
        "approved by reviewer"
        if quantity == proposed
        else (f"approved by reviewer at {quantity} shares (proposed {proposed})")
    )
    notional = as_text(Decimal(verdict["price"]) * quantity)
    return {
        **verdict,
        "quantity": quantity,
        "notional": notional,
        "status": "approved",
        "rule": "human_approval",
        "reason": note,
    }
