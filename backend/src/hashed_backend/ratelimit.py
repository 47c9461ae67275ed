"""Token buckets per API key and per client IP, in memory.

These counters are the one piece of state a replica keeps to itself: with N replicas a client gets at most
N times the configured rate, which is what a rate limit in front of a database is for (keeping one client
from starving the others), and no request's outcome depends on which replica served it.

Example:
    >>> limiter = RateLimiter(clock=lambda: 100.0)
    >>> [limiter.hit("k", rate=1.0, burst=2) for _ in range(3)]
    [0.0, 0.0, 1.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

_PRUNE_EVERY = 10_000


class RateLimiter:
    """Leaky token buckets: `burst` tokens, refilled at `rate` per second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._hits = 0

    def hit(self, key: str, *, rate: float, burst: int) -> float:
        """Take one token for `key`; returns 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) * rate)
        self._hits += 1
        if self._hits % _PRUNE_EVERY == 0:
            self._prune(now, rate, burst)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    def _prune(self, now: float, rate: float, burst: int) -> None:
        """Forget buckets that have refilled completely (they hold nothing worth remembering)."""
        full = burst / rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
