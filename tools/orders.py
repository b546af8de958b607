"""Order tools only *propose*; `risk_check` decides and `execute` books.

The proposal is written into graph state with a `Command`, so the account it trades for is the
session's own model: the LLM cannot name another account because no such argument exists.
"""

from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import Command

from graph.context import SessionContext
from tools.caller import caller_of
from tradegraph.orders import Proposal
from tradegraph.reports import open_orders_of

OrderTypeArg = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForceArg = Literal["day", "gtc"]
Price = float | str | None


def _propose(
    runtime: ToolRuntime[SessionContext, Any], proposal: Proposal, text: str, name: str
) -> Command[Any]:
    return Command(
        update={
            "proposals": [proposal],
            "messages": [ToolMessage(text, tool_call_id=runtime.tool_call_id, name=name)],
        }
    )


def _order(
    name: str,
    side: str,
    symbol: str,
    quantity: int | float,
    runtime: ToolRuntime[SessionContext, Any],
    terms: dict[str, Any],
) -> Command[Any]:
    state = runtime.state
    given = {key: value for key, value in terms.items() if value is not None}
    proposal: Proposal = {
        "id": f"{state['bar_index']}:{runtime.tool_call_id}",
        "symbol": symbol.upper(),
        "side": side,
        "quantity": quantity,
        "source": "llm",
        "note": f"tool call {runtime.tool_call_id}",
        "intent": name if name in ("short", "cover") else None,
        **given,  # type: ignore[typeddict-item]
    }
    described = ", ".join(f"{k} {v}" for k, v in given.items()) or "market, day"
    text = (
        f"Proposed {name} {quantity} {symbol.upper()} ({described}) for {state['signature']}. "
        "risk_check reviews it after your turn; the outcome appears in the session."
    )
    return _propose(runtime, proposal, text, name)


@tool
def buy(
    symbol: str,
    quantity: int | float,
    runtime: ToolRuntime[SessionContext, Any],
    order_type: OrderTypeArg = "market",
    limit_price: Price = None,
    stop_price: Price = None,
    trail_percent: Price = None,
    time_in_force: TimeInForceArg = "day",
    take_profit: Price = None,
    stop_loss: Price = None,
) -> Command[Any]:
    """Propose buying `quantity` whole shares of `symbol` (covering a short first, if you have one).

    A market order fills at this bar's close. `limit` needs limit_price (fills at or below it),
    `stop` needs stop_price above the market (fills once the price rises to it), `stop_limit` needs
    both, `trailing_stop` needs trail_percent. time_in_force `day` expires after the next trading
    day's last bar, `gtc` lasts the session. take_profit (a higher limit) and stop_loss (a lower
    stop) make it a bracket: both exits are placed when it fills, and one cancels the other."""
    terms = dict(
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_percent=trail_percent,
        time_in_force=time_in_force,
        take_profit=take_profit,
        stop_loss=stop_loss,
    )
    return _order("buy", "buy", symbol, quantity, runtime, terms)


@tool
def sell(
    symbol: str,
    quantity: int | float,
    runtime: ToolRuntime[SessionContext, Any],
    order_type: OrderTypeArg = "market",
    limit_price: Price = None,
    stop_price: Price = None,
    trail_percent: Price = None,
    time_in_force: TimeInForceArg = "day",
) -> Command[Any]:
    """Propose selling `quantity` whole shares of `symbol` you hold. A market order fills at this
    bar's close; `limit` fills at or above limit_price; `stop` (stop_price below the market) sells
    once the price falls to it; `trailing_stop` follows the high by trail_percent."""
    terms = dict(
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_percent=trail_percent,
        time_in_force=time_in_force,
    )
    return _order("sell", "sell", symbol, quantity, runtime, terms)


@tool
def short(
    symbol: str,
    quantity: int | float,
    runtime: ToolRuntime[SessionContext, Any],
    order_type: OrderTypeArg = "market",
    limit_price: Price = None,
    time_in_force: TimeInForceArg = "day",
    take_profit: Price = None,
    stop_loss: Price = None,
) -> Command[Any]:
    """Propose selling short `quantity` shares of `symbol` you do not hold (only if your bot allows
    shorting; it takes initial margin and pays a daily borrow fee). take_profit (a lower limit) and
    stop_loss (a higher stop) place exits that buy the shares back when it fills."""
    terms = dict(
        order_type=order_type,
        limit_price=limit_price,
        time_in_force=time_in_force,
        take_profit=take_profit,
        stop_loss=stop_loss,
    )
    return _order("short", "sell", symbol, quantity, runtime, terms)


@tool
def cover(
    symbol: str,
    quantity: int | float,
    runtime: ToolRuntime[SessionContext, Any],
    order_type: OrderTypeArg = "market",
    limit_price: Price = None,
    stop_price: Price = None,
    time_in_force: TimeInForceArg = "day",
) -> Command[Any]:
    """Propose buying back `quantity` shares of a short position in `symbol` (at most what is short)."""
    terms = dict(
        order_type=order_type, limit_price=limit_price, stop_price=stop_price, time_in_force=time_in_force
    )
    return _order("cover", "buy", symbol, quantity, runtime, terms)


@tool
def cancel_order(order_id: int, runtime: ToolRuntime[SessionContext, Any]) -> Command[Any]:
    """Propose cancelling one of your open orders by its `order_id` (see get_open_orders)."""
    state = runtime.state
    proposal: Proposal = {
        "id": f"{state['bar_index']}:{runtime.tool_call_id}",
        "symbol": "",
        "side": "",
        "quantity": 0,
        "source": "llm",
        "note": f"tool call {runtime.tool_call_id}",
        "cancel_order_id": order_id,
    }
    return _propose(runtime, proposal, f"Proposed cancelling order {order_id}.", "cancel_order")


@tool
async def get_open_orders(runtime: ToolRuntime[SessionContext, Any]) -> dict[str, Any]:
    """Your orders still waiting in the book (limit, stop, trailing, bracket exits), with their ids."""
    caller = await caller_of(runtime)
    async with caller.pool.connection() as conn:
        orders = await open_orders_of(conn, model_id=caller.model_id)
    return {"signature": caller.signature, "orders": orders}
