"""An order's life before and at the ledger: proposed by a decider, judged by risk, reported by the ledger.

These are the shapes kept in graph state and sent on the stream, so money is a decimal string.
Order terms (type, prices, time in force, bracket exits) are optional: a proposal without them is
a market order for the close of the bar, as brokers' paper trading fills one.
"""

from typing import Literal, NotRequired, cast

from typing_extensions import TypedDict

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForce = Literal["day", "gtc"]
OrderStatus = Literal["open", "partially_filled", "filled", "cancelled", "expired", "rejected"]
VerdictStatus = Literal["approved", "rejected", "needs_approval"]
Intent = Literal["short", "cover"]
ORDER_TYPES: tuple[OrderType, ...] = ("market", "limit", "stop", "stop_limit", "trailing_stop")
OPEN_STATUSES: tuple[OrderStatus, ...] = ("open", "partially_filled")
"""An order in one of these may still fill, and may be cancelled."""
ORDER_TERMS = (
    "order_type",
    "time_in_force",
    "limit_price",
    "stop_price",
    "trail_percent",
    "take_profit",
    "stop_loss",
    "stop_loss_limit",
    "intent",
)
"""The optional terms of an order, as a verdict and an approval request carry them."""


class OrderTerms(TypedDict):
    """What kind of order: all optional in a proposal, all filled in (decimal strings) in a verdict."""

    order_type: NotRequired[str]
    time_in_force: NotRequired[str]
    limit_price: NotRequired[float | int | str | None]
    stop_price: NotRequired[float | int | str | None]
    trail_percent: NotRequired[float | int | str | None]
    take_profit: NotRequired[float | int | str | None]
    """Bracket: a limit exit placed when the entry fills."""
    stop_loss: NotRequired[float | int | str | None]
    """Bracket: a stop exit placed when the entry fills (one cancels the other)."""
    stop_loss_limit: NotRequired[float | int | str | None]
    """Makes the stop-loss exit a stop-limit."""
    intent: NotRequired[str | None]
    """`short` (a sell that must open a short) or `cover` (a buy that closes one); None: either."""
    cancel_order_id: NotRequired[int | str | None]
    """Set on a cancellation request instead of a new order: the ledger id of the order to cancel."""


class Proposal(OrderTerms):
    """An order (or a cancellation) a decider wants; nothing is checked yet, so any field may be wrong."""

    id: str
    symbol: str
    side: str
    quantity: float | int | str
    source: str
    note: str


class PricedOrder(OrderTerms):
    """A proposal with the price of its bar: what a risk verdict and a reviewer both look at.

    `price` is the price the order is judged at: the close for market and trailing orders, the
    limit or the stop price otherwise; `notional` is quantity times that price."""

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


ExecutionStatus = Literal["filled", "partially_filled", "open", "cancelled", "expired", "rejected"]


class ExecutionReport(TypedDict):
    """What the ledger did with one order at one bar: filled (wholly or partly), left open, closed or
    rejected (by risk, a reviewer or the ledger). `quantity` is what this bar filled."""

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
    order_type: NotRequired[str]
    commission: NotRequired[str | None]
    filled_quantity: NotRequired[int]
    """All shares of the order filled so far."""


def order_terms(order: OrderTerms) -> OrderTerms:
    """Just the order terms an order carries (type, time in force, prices, intent)."""
    return cast(OrderTerms, {key: order[key] for key in ORDER_TERMS if key in order})  # type: ignore[literal-required]


def client_order_id(thread_id: str, start_count: int, bar_index: int, slot: int | str) -> str:
    """The idempotency key of one order: thread, start of its session, bar, position in the bar."""
    return f"{thread_id}:{start_count}:{bar_index}:{slot}"


def session_prefix(thread_id: str, start_count: int) -> str:
    """The start every client order id of one session shares."""
    return f"{thread_id}:{start_count}:"
