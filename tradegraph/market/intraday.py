"""Synthetic minute bars: 390 per trading day, derived deterministically from the real daily bar.

No public-domain minute data exists for this period, so each day's minutes are a seeded random
walk bridged from the day's open to its close, then placed so the day's real high and low are each
touched once and nothing leaves the [low, high] range. Same daily bar in, same minutes out.
"""

import hashlib
import random
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from tradegraph.market.bar import Bar
from tradegraph.money import to_money

MINUTES_PER_DAY = 390
SESSION_OPEN = time(9, 30)


def minute_times(day: datetime) -> list[datetime]:
    """Close times of the day's minute bars: 09:31 .. 16:00."""
    start = day.replace(hour=SESSION_OPEN.hour, minute=SESSION_OPEN.minute, second=0)
    return [start + timedelta(minutes=i + 1) for i in range(MINUTES_PER_DAY)]


def _rng(daily: Bar) -> random.Random:
    seed = hashlib.sha256(f"{daily.symbol}|{daily.time.date()}".encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def _closes(daily: Bar, rng: random.Random) -> list[float]:
    """Minute closes: a Brownian bridge from open to close squeezed inside [low, high]."""
    o, c, lo, hi = (float(v) for v in (daily.open, daily.close, daily.low, daily.high))
    n = MINUTES_PER_DAY
    walk = [0.0]
    for _ in range(n):
        walk.append(walk[-1] + rng.gauss(0.0, 1.0))
    bridge = [walk[i] - walk[n] * i / n for i in range(n + 1)]  # zero at both ends
    span = max(abs(v) for v in bridge) or 1.0
    room = max(hi - lo, 1e-9) / 2
    path = [o + (c - o) * i / n + bridge[i] / span * room for i in range(n + 1)]
    path = [min(max(p, lo), hi) for p in path]
    path[-1] = c
    high_at, low_at = rng.randrange(1, n), rng.randrange(1, n)
    if high_at == low_at:
        low_at = high_at - 1 if high_at > 1 else high_at + 1
    path[high_at], path[low_at] = hi, lo
    return path[1:]


def _price(value: float) -> Decimal:
    return to_money(Decimal(repr(value)))


@lru_cache(maxsize=4096)
def minute_bars(daily: Bar) -> tuple[Bar, ...]:
    """The 390 synthetic minute bars of a daily bar.

    The first opens at the daily open and the last closes at the daily close.
    """
    rng = _rng(daily)
    closes = [_price(p) for p in _closes(daily, rng)]
    closes[-1] = daily.close
    weights = [1.0 + 2.0 * abs(i - MINUTES_PER_DAY / 2) / MINUTES_PER_DAY for i in range(390)]
    total = sum(weights)
    volumes = [int(daily.volume * w / total) for w in weights]
    volumes[-1] += daily.volume - sum(volumes)
    day = datetime.combine(daily.time.date(), time())
    bars: list[Bar] = []
    previous = daily.open
    for at, close, volume in zip(minute_times(day), closes, volumes, strict=True):
        wiggle = _price(rng.uniform(0, float(daily.high - daily.low) * 0.02))
        high = min(max(previous, close) + wiggle, daily.high)
        low = max(min(previous, close) - wiggle, daily.low)
        bars.append(Bar(daily.symbol, at, previous, high, low, close, volume))
        previous = close
    return tuple(bars)
