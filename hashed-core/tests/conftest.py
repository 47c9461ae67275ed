from __future__ import annotations

from pathlib import Path

import pytest

from hashed import Hashed
from hashed.testing import FrozenClock, make_hashed

REPO = Path(__file__).resolve().parents[2]
RFC8785 = REPO.parent / "shared" / "testdata" / "rfc8785"

TRANSFER_POLICY = """
version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000, window: {per: 1d, max_sum: 5000}}
    rate: {per: 1h, max_calls: 10}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".hashed"


@pytest.fixture
def transfers(home: Path, hashed_clock: FrozenClock) -> Hashed:
    instance = make_hashed(home, policy=TRANSFER_POLICY, clock=hashed_clock)
    yield instance
    instance.close()
