"""Human approval of large orders: what a reviewer is asked, which answers count, and their effect.

The answer is `{"action": "approve"}`, `{"action": "reject"}` or `{"action": "approve", "quantity": N}`
with 1 <= N <= the proposed quantity. The server checks answers with `parse_answer` before it
resumes a session; the `approve` node applies them with `apply_answer`.
"""

from decimal import Decimal
from typing import Any, Literal, cast

from tradegraph.money import as_text
from tradegraph.orders import PricedOrder, Verdict, order_terms

ANSWER_SHAPE = '{"action": "approve"|"reject", "quantity"?: N}'
REVIEW_RULE = "human_approval"
"""The rule name of every verdict a reviewer decided."""


class InvalidApproval(ValueError):
    """The answer is not one a reviewer can give; the message says what is wrong."""


class ApprovalRequest(PricedOrder):
    """The interrupt payload a reviewer sees for one order."""

    kind: Literal["order_approval"]
    model_id: int
    signature: str
    clock: str
    limit: str
    reason: str


def approval_request(verdict: Verdict, *, model_id: int, signature: str, clock: str) -> ApprovalRequest:
    """What the reviewer is shown: the order with its type, prices and exits, its price and notional,
    and the limit it crossed."""
    request: ApprovalRequest = {
        "kind": "order_approval",
        "model_id": model_id,
        "signature": signature,
        "clock": clock,
        "proposal_id": verdict["proposal_id"],
        "symbol": verdict["symbol"],
        "side": verdict["side"],
        "quantity": verdict["quantity"],
        "price": verdict["price"],
        "notional": verdict["notional"],
        "limit": verdict["rule"],
        "reason": verdict["reason"],
    }
    return cast(ApprovalRequest, {**request, **order_terms(verdict)})


def parse_answer(answer: Any, proposed: int) -> int | None:
    """The approved quantity, or None for a rejection; raises InvalidApproval naming the problem."""
    if not isinstance(answer, dict) or answer.get("action") not in ("approve", "reject"):
        raise InvalidApproval(f"resume with {ANSWER_SHAPE}")
    if answer["action"] == "reject":
        return None
    quantity = answer.get("quantity", proposed)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= proposed:
        raise InvalidApproval(f"quantity must be a whole number from 1 to {proposed}, got {quantity!r}")
    return quantity


def apply_answer(verdict: Verdict, answer: Any) -> Verdict:
    """The verdict after the reviewer's answer (an unreadable answer counts as a rejection)."""
    proposed = int(str(verdict["quantity"]))
    try:
        quantity = parse_answer(answer, proposed)
    except InvalidApproval as exc:
        return {**verdict, "status": "rejected", "rule": REVIEW_RULE, "reason": f"unreadable answer: {exc}"}
    if quantity is None:
        return {**verdict, "status": "rejected", "rule": REVIEW_RULE, "reason": "rejected by reviewer"}
    note = (
        "approved by reviewer"
        if quantity == proposed
        else f"approved by reviewer at {quantity} shares (proposed {proposed})"
    )
    notional = as_text(Decimal(str(verdict["price"])) * quantity)
    return {
        **verdict,
        "quantity": quantity,
        "notional": notional,
        "status": "approved",
        "rule": REVIEW_RULE,
        "reason": note,
    }
