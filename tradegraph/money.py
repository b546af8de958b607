"""Exact money: Decimal in code, NUMERIC in Postgres, decimal strings in state and JSON."""

from decimal import ROUND_HALF_EVEN, Decimal

CENT_STEP = Decimal("0.0001")
"""Ledger precision: four decimal places, as in the NUMERIC(20, 4) columns."""


def to_money(value: Decimal | str | int) -> Decimal:
    """Round to ledger precision with banker's rounding."""
    return Decimal(value).quantize(CENT_STEP, ROUND_HALF_EVEN)


def as_text(value: Decimal) -> str:
    """The decimal string kept in graph state and sent to clients."""
    return str(to_money(value))
