"""The OHLCV bar value type shared by daily and minute data."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; `time` is when the bar closes (exchange local time, New York)."""

    symbol: str
    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form: prices as decimal strings, time as ISO 8601."""
        return {
            "symbol": self.symbol,
            "time": self.time.isoformat(),
            "open": str(self.open),
            "high": str(self.high),
            "low": str(self.low),
            "close": str(self.close),
            "volume": self.volume,
        }
