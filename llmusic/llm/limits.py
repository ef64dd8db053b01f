"""Client-side limits for API backends: token-bucket rate limiting and retry backoff.

Used by the OpenAI backends; a backend builds its own from its config keys (rpm, tpm, backoff_*).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping


class TokenBucket:
    """`rate_per_min` units per minute, in bursts of up to `burst_s` seconds' worth.

    A request larger than the burst waits for a full bucket and then drives the level negative, so
    one big request is never starved and the average rate still holds. `clock` and `sleep` are the
    time it reads and waits on (a test passes a fake one).
    """

    def __init__(self, rate_per_min: float, burst_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate_per_min <= 0:
            raise ValueError(f"rate must be positive, got {rate_per_min}")
        self.rate_per_s = rate_per_min / 60.0
        self.capacity = max(1.0, self.rate_per_s * burst_s)
        self.level = self.capacity
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        async with self._lock:  # waiters are served in arrival order
            while True:
                self._refill()
                need = min(amount, self.capacity)
                if self.level >= need:
                    self.level -= amount
                    return
                await self._sleep((need - self.level) / self.rate_per_s)

    def refund(self, amount: float) -> None:
        """Give back what a request reserved but did not use (tokens: estimate minus actual)."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """Requests per minute and tokens per minute; either may be None (no limit)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, burst_s: float = 10.0) -> None:
        self.requests = TokenBucket(rpm, burst_s) if rpm else None
        self.tokens = TokenBucket(tpm, burst_s) if tpm else None

    async def acquire(self, tokens: int) -> None:
        if self.requests is not None:
            await self.requests.acquire(1)
        if self.tokens is not None:
            await self.tokens.acquire(tokens)

    def settle(self, reserved: int, used: int) -> None:
        if self.tokens is not None and used < reserved:
            self.tokens.refund(reserved - used)


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The server's own wait: `retry-after-ms`, else `Retry-After` in seconds or as an HTTP date."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, date.timestamp() - time.time())


class Backoff:
    """Exponential backoff with full jitter, unless the server said how long to wait."""

    def __init__(self, base_s: float = 1.0, max_s: float = 60.0, seed: int | None = None) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._rng = random.Random(seed)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            # The server knows when its window reopens, so its figure wins over max_s; a little
            # jitter on top keeps a crowd of waiters from returning at once.
            return retry_after * (1 + 0.1 * self._rng.random())
        return self._rng.uniform(0, min(self.max_s, self.base_s * 2**retry))
