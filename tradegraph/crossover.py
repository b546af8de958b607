"""The `rule` strategy: a moving-average crossover with fixed-fraction sizing, as pure functions.

For each symbol, on bars closed up to the clock: when the 5-bar simple moving average of closes is
above the 20-bar one and nothing is held, buy shares worth 10% of equity (rounded down); when it is
below and shares are held, sell them all. Otherwise do nothing. Same inputs, same orders.

With brackets (the bot's `strategy.take_profit_pct` / `stop_loss_pct`), each buy carries a
take-profit limit and a stop-loss stop that far from the close, and positions are left to those
exits instead of the crossover's sell, so a bracket strategy can be backtested offline.
"""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from tradegraph.money import LEDGER_STEP
from tradegraph.orders import Proposal
from tradegraph.terms import HUNDRED, Strategy

FAST, SLOW = 5, 20
POSITION_FRACTION = Decimal("0.10")


def sma(closes: list[Decimal], window: int) -> Decimal:
    """Mean of the last `window` closes."""
    return sum(closes[-window:], Decimal(0)) / window


def crossover_proposals(
    *,
    bar_index: int,
    closes: dict[str, list[Decimal]],
    positions: dict[str, int],
    equity: Decimal,
    strategy: Strategy | None = None,
) -> tuple[list[Proposal], list[str]]:
    """Proposals for this bar and one line of reasoning per symbol."""
    brackets = strategy is not None and (strategy.take_profit_pct or strategy.stop_loss_pct)
    proposals: list[Proposal] = []
    notes: list[str] = []
    for symbol, series in closes.items():
        if len(series) < SLOW:
            notes.append(f"{symbol}: {len(series)} bars, need {SLOW}")
            continue
        fast, slow, held = sma(series, FAST), sma(series, SLOW), positions.get(symbol, 0)
        trend = f"{symbol}: SMA{FAST} {fast:.2f} vs SMA{SLOW} {slow:.2f}"
        if fast > slow and held == 0:
            quantity = int((equity * POSITION_FRACTION / series[-1]).to_integral_value(ROUND_DOWN))
            if quantity > 0:
                proposal = _proposal(bar_index, symbol, "buy", quantity, trend)
                if brackets and strategy is not None:
                    proposal.update(_exits(series[-1], strategy))
                proposals.append(proposal)
                notes.append(f"{trend}: uptrend, buy {quantity}")
                continue
        elif fast < slow and held > 0 and not brackets:
            proposals.append(_proposal(bar_index, symbol, "sell", held, trend))
            notes.append(f"{trend}: downtrend, sell {held}")
            continue
        notes.append(f"{trend}: hold")
    return proposals, notes


def _exits(close: Decimal, strategy: Strategy) -> Proposal:
    exits: Proposal = {}  # type: ignore[typeddict-item]
    if strategy.take_profit_pct:
        exits["take_profit"] = str(_price(close * (1 + strategy.take_profit_pct / HUNDRED)))
    if strategy.stop_loss_pct:
        exits["stop_loss"] = str(_price(close * (1 - strategy.stop_loss_pct / HUNDRED)))
    return exits


def _price(value: Decimal) -> Decimal:
    return value.quantize(LEDGER_STEP, ROUND_HALF_EVEN)


def _proposal(bar_index: int, symbol: str, side: str, quantity: int, note: str) -> Proposal:
    return {
        "id": f"{bar_index}:rule:{symbol}",
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "source": "rule",
        "note": note,
    }
