from __future__ import annotations

import random

from hashed.shipping import Backoff, CircuitBreaker


def test_backoff_is_full_jitter_below_an_exponential_ceiling_with_a_cap():
    rng = random.Random(7)  # noqa: S311 - jitter, not secrets
    backoff = Backoff(base=0.5, cap=8, rng=rng.random)
    waits = [backoff.failure() for _ in range(10)]
    ceilings = [min(8, 0.5 * 2**n) for n in range(10)]
    assert all(0 <= w <= c for w, c in zip(waits, ceilings))
    assert len(set(waits)) == 10  # jittered: reconnecting agents spread out
    backoff.success()
    assert backoff.failure() <= 0.5


def test_retry_after_from_the_server_wins():
    backoff = Backoff(base=0.5, cap=8, rng=lambda: 0.0)
    assert backoff.failure(retry_after=3) == 3.0
    assert backoff.failure(retry_after=10_000) == 80.0  # never more than ten caps


def test_breaker_opens_after_failures_and_half_opens_after_a_while():
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, reset_after=10, clock=lambda: now[0])
    for _ in range(2):
        breaker.failed()
    assert breaker.allows()
    breaker.failed()
    assert (breaker.state, breaker.allows()) == ("open", False)
    now[0] = 10.0
    assert (breaker.state, breaker.allows()) == ("half-open", True)
    breaker.failed()  # the trial failed: open again, for another reset period
    assert (breaker.state, breaker.allows()) == ("open", False)
    now[0] = 20.0
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.failures == 0
