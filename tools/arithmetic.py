"""Exact arithmetic for the model (LLMs are poor calculators; decimals avoid float drift)."""

from decimal import Decimal, InvalidOperation

from langchain_core.tools import tool


def _decimal(value: float | str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


@tool
def add(a: float | str, b: float | str) -> str:
    """Add two numbers exactly and return the sum as a decimal string."""
    return str(_decimal(a) + _decimal(b))


@tool
def multiply(a: float | str, b: float | str) -> str:
    """Multiply two numbers exactly and return the product as a decimal string."""
    return str(_decimal(a) * _decimal(b))
