"""Reviewer answers to a paused order: which are valid, and what each does to the verdict."""

import pytest

from tradegraph.approval import InvalidApproval, apply_answer, approval_request, parse_answer
from tradegraph.orders import Verdict

PAUSED: Verdict = {
    "proposal_id": "7:rule:AAPL",
    "symbol": "AAPL",
    "side": "buy",
    "quantity": 100,
    "price": "412.5000",
    "notional": "41250.0000",
    "status": "needs_approval",
    "rule": "approval_notional",
    "reason": "notional 41250.0000 is above the approval threshold 5000",
}


def test_valid_answers() -> None:
    assert parse_answer({"action": "approve"}, 100) == 100
    assert parse_answer({"action": "approve", "quantity": 1}, 100) == 1
    assert parse_answer({"action": "approve", "quantity": 100}, 100) == 100
    assert parse_answer({"action": "reject"}, 100) is None


@pytest.mark.parametrize(
    ("answer", "names"),
    [
        ({"action": "approve", "quantity": 0}, "from 1 to 100, got 0"),
        ({"action": "approve", "quantity": 101}, "from 1 to 100, got 101"),
        ({"action": "approve", "quantity": 2.5}, "got 2.5"),
        ({"action": "approve", "quantity": True}, "got True"),
        ({"action": "maybe"}, '"action": "approve"|"reject"'),
        ({"quantity": 3}, '"action": "approve"|"reject"'),
        ("yes", '"action": "approve"|"reject"'),
    ],
)
def test_invalid_answers_name_the_problem(answer: object, names: str) -> None:
    with pytest.raises(InvalidApproval) as raised:
        parse_answer(answer, 100)
    assert names in str(raised.value)


def test_approving_fewer_shares_recomputes_the_notional_exactly() -> None:
    verdict = apply_answer(PAUSED, {"action": "approve", "quantity": 3})
    assert verdict["status"] == "approved" and verdict["quantity"] == 3
    assert verdict["notional"] == "1237.5000"  # 3 x 412.5000
    assert verdict["rule"] == "human_approval"
    assert verdict["reason"] == "approved by reviewer at 3 shares (proposed 100)"
    assert apply_answer(PAUSED, {"action": "approve"})["reason"] == "approved by reviewer"


def test_a_rejection_and_an_unreadable_answer_reject_the_order() -> None:
    rejected = apply_answer(PAUSED, {"action": "reject"})
    assert (rejected["status"], rejected["rule"], rejected["reason"]) == (
        "rejected",
        "human_approval",
        "rejected by reviewer",
    )
    unreadable = apply_answer(PAUSED, "ok!")
    assert unreadable["status"] == "rejected"
    assert unreadable["reason"].startswith("unreadable answer: resume with")
    assert unreadable["quantity"] == 100, "what was proposed is kept on record"


def test_the_request_shows_the_order_and_the_limit_it_crossed() -> None:
    request = approval_request(PAUSED, model_id=4, signature="trend-1", clock="2012-01-03T16:00:00")
    assert request == {
        "kind": "order_approval",
        "model_id": 4,
        "signature": "trend-1",
        "clock": "2012-01-03T16:00:00",
        "proposal_id": "7:rule:AAPL",
        "symbol": "AAPL",
        "side": "buy",
        "quantity": 100,
        "price": "412.5000",
        "notional": "41250.0000",
        "limit": "approval_notional",
        "reason": "notional 41250.0000 is above the approval threshold 5000",
    }
