"""Per-API-key rate limits: a client hammering the API gets a 429 naming the limit, not everyone's CPU.

A moving window per key and limit, kept in this process's memory: with several server processes
each enforces the limit on its own share of the traffic. Probes, metrics and static files are not
limited; requests without a key are left to authentication (401).

`limits` parses the notation (`100/second;2000/minute`). The window is kept here rather than in
`limits`' MemoryStorage, which starts a thread to expire entries whenever its previous one has
ended (about 0.4 ms per request when requests come more than 10 ms apart, on the critical path of
every request); here each key keeps the times of its last `amount` requests, and idle keys are
dropped as requests come in.
"""

import hashlib
import math
import time
from collections import deque

from limits import RateLimitItem, parse_many
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.deps import api_key_of

UNLIMITED_PATHS = ("/ok", "/ready", "/metrics", "/console/static/")
SWEEP_EVERY = 1024
"""Requests between two sweeps of the keys idle for a whole window (any string may come as a key)."""


def parse_limits(text: str) -> list[RateLimitItem]:
    """`100/second;2000/minute` -> limit items; `none` (or empty) -> no limit."""
    return [] if text.strip().lower() in ("", "none") else parse_many(text)


class MovingWindow:
    """At most `item.amount` requests per bucket in any `item.get_expiry()` seconds."""

    def __init__(self, item: RateLimitItem) -> None:
        self.item, self.seconds = item, float(item.get_expiry())
        self._hits: dict[str, deque[float]] = {}
        self._until_sweep = SWEEP_EVERY

    def wait_s(self, bucket: str, now: float) -> float:
        """0 when the bucket may make a request at `now`, else the seconds until it may."""
        hits = self._hits.get(bucket)
        if hits is None or len(hits) < self.item.amount:
            return 0.0
        return max(0.0, hits[0] + self.seconds - now)

    def __contains__(self, bucket: str) -> bool:
        """Whether the bucket's requests are still kept."""
        return bucket in self._hits

    def hit(self, bucket: str, now: float) -> None:
        """Count a request (the oldest one falls out once `amount` are kept)."""
        self._hits.setdefault(bucket, deque(maxlen=self.item.amount)).append(now)
        self._until_sweep -= 1
        if self._until_sweep == 0:
            self._until_sweep = SWEEP_EVERY
            idle = [b for b, hits in self._hits.items() if hits[-1] <= now - self.seconds]
            for b in idle:
                del self._hits[b]


class RateLimit:
    """ASGI middleware enforcing every limit per API key (the key's hash identifies the bucket)."""

    def __init__(self, app: ASGIApp, limits: str) -> None:
        self.app = app
        self.windows = [MovingWindow(item) for item in parse_limits(limits)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.windows or scope["path"].startswith(UNLIMITED_PATHS):
            await self.app(scope, receive, send)
            return
        key = api_key_of(Request(scope))
        if key is not None:
            bucket, now = hashlib.sha256(key.encode()).hexdigest()[:24], time.monotonic()
            for window in self.windows:  # a refused request counts against no limit
                if wait_s := window.wait_s(bucket, now):
                    await self._refusal(window.item, wait_s)(scope, receive, send)
                    return
            for window in self.windows:
                window.hit(bucket, now)
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(item: RateLimitItem, wait_s: float) -> JSONResponse:
        retry_after = max(1, math.ceil(wait_s))
        detail = f"rate limit exceeded for this API key: {item}; retry after {retry_after} s"
        return JSONResponse({"detail": detail}, status_code=429, headers={"Retry-After": str(retry_after)})
