"""Waiting between attempts: exponential backoff with full jitter, Retry-After, a cap, and a circuit breaker.

Full jitter (a uniform wait in [0, min(cap, base·2^attempt)]) spreads reconnecting agents out, so a backend
that comes back is not hit by all of them at once (AWS Architecture Blog, "Exponential Backoff and Jitter").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["Backoff", "CircuitBreaker"]


class Backoff:
    """How long to wait before the next attempt.

    Example:
        >>> b = Backoff(base=0.5, cap=30, rng=lambda: 1.0)
        >>> [b.failure() for _ in range(8)]
        [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
        >>> b.failure(retry_after=90)   # the server knows best, within the cap's reach
        90.0
    """

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self.attempt = 0

    def failure(self, retry_after: float | None = None) -> float:
        """Record a failure; return the seconds to wait (Retry-After wins when the server sends it)."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.cap * 10))
        return float(ceiling * self._rng())

    def success(self) -> None:
        """Start over after a success."""
        self.attempt = 0


class CircuitBreaker:
    """Stops calling a backend that keeps failing, then lets one trial call through after `reset_after` seconds.

    Example:
        >>> now = [0.0]
        >>> cb = CircuitBreaker(threshold=2, reset_after=10, clock=lambda: now[0])
        >>> cb.failed(); cb.failed(); cb.allows()
        False
        >>> now[0] = 11; cb.allows()      # half-open: one trial
        True
        >>> cb.succeeded(); cb.state
        'closed'
    """

    def __init__(
        self, *, threshold: int = 5, reset_after: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold, self.reset_after, self._clock = threshold, reset_after, clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        """Closed (calling), open (not calling) or half-open (one trial allowed)."""
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.reset_after else "open"

    def allows(self) -> bool:
        """Whether a call may be made now."""
        return self.state != "open"

    def failed(self) -> None:
        """Count a failure; open after `threshold` in a row (or at once when a half-open trial fails)."""
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self._clock()

    def succeeded(self) -> None:
        """Close after a success."""
        self.failures = 0
        self.opened_at = None
