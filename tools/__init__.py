"""Tools the LLM decider may call. Identity comes from graph state through `ToolRuntime`."""

from langchain_core.tools import BaseTool

from tools.arithmetic import add, multiply
from tools.market import get_price, get_price_history
from tools.orders import buy, sell
from tools.portfolio import get_portfolio

TRADING_TOOLS: list[BaseTool] = [
    get_price,
    get_price_history,
    get_portfolio,
    add,
    multiply,
    buy,
    sell,
]

__all__ = [
    "TRADING_TOOLS",
    "add",
    "buy",
    "get_portfolio",
    "get_price",
    "get_price_history",
    "multiply",
    "sell",
]
