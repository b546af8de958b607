"""An order's life before and at the ledger: proposed by a decider, judged by risk, reported by the ledger.

These are the shapes kept in graph state and sent on the stream, so money is a decimal string.
"""

from typing import Literal

from typing_extensions import TypedDict

Side = Literal["buy", "sell"]
VerdictStatus = Literal["approved", "rejected", "needs_approval"]
ExecutionStatus = Literal["filled", "rejected"]


class Proposal(TypedDict):
    """An order a decider wants; nothing is checked yet, so any field may be wrong."""

    id: str
    symbol: str
    side: str
    quantity: float | int | str
    source: str
    note: str


class PricedOrder(TypedDict):
    """A proposal with the price of its bar: what a risk verdict and a reviewer both look at."""

    proposal_id: str
    symbol: str
    side: str
    quantity: float | int | str | None
    price: str | None
    notional: str | None


class Verdict(PricedOrder):
    """The risk decision on one proposal, with the rule that decided it and the reason."""

    status: VerdictStatus
    rule: str
    reason: str


class ExecutionReport(TypedDict):
    """What the ledger did with one verdict: `filled`, or `rejected` (by risk, a reviewer or the ledger)."""

    client_order_id: str
    symbol: str
    side: str
    quantity: int
    price: str | None
    notional: str | None
    status: ExecutionStatus
    rule: str
    reason: str
    replayed: bool
    """True when the ledger already had this order (a replayed `execute`): nothing was written twice."""


def client_order_id(thread_id: str, start_count: int, bar_index: int, slot: int) -> str:
    """The idempotency key of one order: thread, start of its session, bar, position in the bar."""
    return f"{thread_id}:{start_count}:{bar_index}:{slot}"
