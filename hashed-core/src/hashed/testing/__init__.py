"""Pytest fixtures for code that uses Hashed (registered as a pytest11 plugin by hashed-core).

Fixtures:
    hashed_clock: a `FrozenClock` (nanoseconds; call `advance(seconds)` to move it).
    hashed_identity: a fixed Ed25519 identity (`FIXED_SEED`), so records are reproducible.
    hashed_offline: a real `Hashed` with its ledger in `tmp_path`, the fixed identity, the frozen clock,
        an allow-everything policy (replace it with `set_policy`) and no backend. Internal errors that
        Hashed would log are raised instead, so a swallowed failure fails the test.

Example:
    def test_refund_is_limited(hashed_offline):
        hashed_offline.set_policy("rules: [{id: r, tools: [refund], effect: allow, limits: {amount: {max: 10}}}]")
        refund = hashed_offline.guard("refund")(lambda amount: "ok")
        assert refund(50).decision.effect == "deny"
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashed._core import Hashed
from hashed.config import HashedSettings
from hashed.identity import Identity

__all__ = ["ALLOW_ALL", "FIXED_SEED", "FrozenClock", "hashed_clock", "hashed_identity", "hashed_offline", "make_hashed"]

FIXED_SEED = bytes(range(32))
ALLOW_ALL = "version: 1\ndefault: allow\nrules: []\n"


class FrozenClock:
    """A clock that stands still until told to move; thread-safe; strictly increasing by 1 ns per read.

    Example:
        >>> clock = FrozenClock(start_ns=1_000)
        >>> clock(), clock()
        (1000, 1001)
        >>> clock.advance(1); clock()
        1000001002
    """

    def __init__(self, start_ns: int = 1_767_225_600 * 10**9) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_ns
        self._lock = threading.Lock()

    def __call__(self) -> int:
        """Now, in nanoseconds since the epoch."""
        with self._lock:
            now = self._now
            self._now += 1
            return now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += int(seconds * 1e9)


def make_hashed(
    home: Path, *, policy: str = ALLOW_ALL, clock: FrozenClock | None = None, **overrides: object
) -> Hashed:
    """A real, offline `Hashed` in `home` with the fixed identity (what `hashed_offline` builds)."""
    home.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {"disable_plugin_autoload": True, "raise_internal_errors": True, **overrides}
    settings = HashedSettings(home=home, **values)  # type: ignore[arg-type]
    return Hashed(settings=settings, identity=Identity.from_seed(FIXED_SEED), policy=policy, clock=clock)


@pytest.fixture
def hashed_clock() -> FrozenClock:
    """A frozen clock at 2026-01-01T00:00:00Z."""
    return FrozenClock()


@pytest.fixture
def hashed_identity() -> Identity:
    """The fixed test identity."""
    return Identity.from_seed(FIXED_SEED)


@pytest.fixture
def hashed_offline(tmp_path: Path, hashed_clock: FrozenClock) -> Iterator[Hashed]:
    """A real Hashed: file ledger in tmp_path, fixed identity, frozen clock, allow-all policy, no backend."""
    with make_hashed(tmp_path / ".hashed", clock=hashed_clock) as instance:
        yield instance
