"""Exact money: Decimal in code, NUMERIC in Postgres, decimal strings in state and JSON."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

LEDGER_STEP = Decimal("0.0001")
"""Ledger precision: four decimal places, as in the NUMERIC(20, 4) columns (prices use it too)."""


def to_money(value: Decimal | str | int) -> Decimal:
    """Round to ledger precision with banker's rounding."""
    return Decimal(value).quantize(LEDGER_STEP, ROUND_HALF_EVEN)


def as_text(value: Decimal) -> str:
    """The decimal string kept in graph state and sent to clients."""
    return str(to_money(value))


def format_money(value: object) -> str:
    """For people: `12345.6789` -> `12,345.68`; None and blanks -> ``; anything else unchanged."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)
