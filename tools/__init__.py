"""Tools the LLM decider may call. Identity comes from graph state through `ToolRuntime`."""

from langchain_core.tools import BaseTool

from tools.arithmetic import add, multiply
from tools.market import get_price, get_price_history
from tools.memory import recall, remember
from tools.orders import buy, cancel_order, cover, get_open_orders, sell, short
from tools.portfolio import get_portfolio

TRADING_TOOLS: list[BaseTool] = [
    get_price,
    get_price_history,
    get_portfolio,
    add,
    multiply,
    buy,
    sell,
    short,
    cover,
    cancel_order,
    get_open_orders,
    remember,
    recall,
]

__all__ = [
    "TRADING_TOOLS",
    "add",
    "buy",
    "cancel_order",
    "cover",
    "get_open_orders",
    "get_portfolio",
    "get_price",
    "get_price_history",
    "multiply",
    "recall",
    "remember",
    "sell",
    "short",
]
