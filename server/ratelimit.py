"""Per-API-key rate limits: a client hammering the API gets a 429 naming the limit, not everyone's CPU.

A moving window per key and limit (`limits`), kept in this process's memory: with several server
processes each enforces the limit on its own share of the traffic. Probes, metrics and static
files are not limited; requests without a key are left to authentication (401).
"""

import hashlib
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.deps import api_key_of

UNLIMITED_PATHS = ("/ok", "/ready", "/metrics", "/console/static/")


def parse_limits(text: str) -> list[RateLimitItem]:
    """`100/second;2000/minute` -> limit items; `none` (or empty) -> no limit."""
    return [] if text.strip().lower() in ("", "none") else parse_many(text)


class RateLimit:
    """ASGI middleware enforcing every limit per API key (the key's hash identifies the bucket)."""

    def __init__(self, app: ASGIApp, limits: str) -> None:
        self.app, self.items = app, parse_limits(limits)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.items or scope["path"].startswith(UNLIMITED_PATHS):
            await self.app(scope, receive, send)
            return
        key = api_key_of(Request(scope))
        if key is not None:
            bucket = hashlib.sha256(key.encode()).hexdigest()[:24]
            for item in self.items:
                if not self.limiter.hit(item, bucket):
                    await self._refusal(item, bucket)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _refusal(self, item: RateLimitItem, bucket: str) -> JSONResponse:
        reset = self.limiter.get_window_stats(item, bucket).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        detail = f"rate limit exceeded for this API key: {item}; retry after {retry_after} s"
        return JSONResponse({"detail": detail}, status_code=429, headers={"Retry-After": str(retry_after)})
