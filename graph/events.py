"""The custom stream events of a session: what nodes write with `runtime.stream_writer`.

Clients read them from the `custom` stream mode: `cli/watch.py`, `cli/backtest.py` and the
console's `server/console/static/live.js` (which follows these shapes field for field). Each
event carries its `type` and the session `clock` (ISO 8601, New York time) of the bar it is about.
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from typing_extensions import TypedDict

from tradegraph.money import as_text
from tradegraph.orders import ExecutionReport, Verdict


class DecisionEvent(TypedDict):
    """How the decider fared at a bar: `ok`, or `failed` with the reason (never a silent hold)."""

    type: Literal["decision"]
    clock: str
    bar_index: int
    decider: str
    status: Literal["ok", "failed"]
    reason: str


def decision_event(
    *, clock: datetime, bar_index: int, decider: str, status: Literal["ok", "failed"], reason: str
) -> DecisionEvent:
    """The decision event of a bar."""
    return {
        "type": "decision",
        "clock": clock.isoformat(),
        "bar_index": bar_index,
        "decider": decider,
        "status": status,
        "reason": reason,
    }


class VerdictEvent(Verdict):
    """A risk verdict (from `risk_check`, or a reviewer's answer seen by `execute`), with its bar."""

    type: Literal["verdict"]
    clock: str


class FillEvent(ExecutionReport):
    """The ledger's execution report of one order (`filled` with price and notional, or `rejected`)."""

    type: Literal["fill"]
    clock: str


class EquityEvent(TypedDict):
    """The portfolio and buy-and-hold marked at the end of a bar (money as decimal strings)."""

    type: Literal["equity"]
    clock: str
    bar_index: int
    bars_total: int
    equity: str
    cash: str
    benchmark: str


def equity_event(
    *, clock: datetime, bar_index: int, bars_total: int, equity: str, cash: str, benchmark: Decimal
) -> EquityEvent:
    """The equity event that ends a bar."""
    return {
        "type": "equity",
        "clock": clock.isoformat(),
        "bar_index": bar_index,
        "bars_total": bars_total,
        "equity": equity,
        "cash": cash,
        "benchmark": as_text(benchmark),
    }


class OrderEvent(TypedDict):
    """A status change of an order in the ledger: placed (`open`), `partially_filled`, `filled`,
    `cancelled`, `expired` or `rejected`, or still open with news (a stop-limit triggered), with why."""

    type: Literal["order"]
    clock: str
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    status: str
    filled_quantity: int
    reason: str


class FeeEvent(TypedDict):
    """A borrow fee charged on a short held overnight (money as decimal strings)."""

    type: Literal["fee"]
    clock: str
    symbol: str
    quantity: int
    price: str
    days: int
    amount: str


SessionEvent = DecisionEvent | VerdictEvent | FillEvent | EquityEvent | OrderEvent | FeeEvent
"""Any custom event of a session; tell them apart by `type`."""
