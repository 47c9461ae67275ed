"""Helpers of the deployment and operations tests (imported by them; conftest puts this folder on sys.path)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hashed import Hashed, Identity
from hashed.config import HashedSettings

ROOT = Path(__file__).resolve().parents[2]
PG_SKIP = "HASHED_TEST_DATABASE_URL is not set: PostgreSQL tests need a server (CI sets it)"
POLICY = """\
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 100}}
"""


def admin_url() -> str:
    url = os.environ.get("HASHED_TEST_DATABASE_URL")
    if not url:
        pytest.skip(PG_SKIP)
    return url


def make_agent(home: Path, url: str, key: str, name: str) -> Hashed:
    """A real agent (hashed-core) that ships to `url` with an agent key; one Ed25519 key per name."""
    home.mkdir(parents=True, exist_ok=True)
    settings = HashedSettings(  # type: ignore[call-arg]
        home=home,
        agent=name,
        backend_url=url,
        api_key=key,
        ship_interval=0.05,
        policy_interval=0.2,
        request_timeout=2.0,
        flush_timeout=5.0,
        disable_plugin_autoload=True,
        raise_internal_errors=True,
    )
    return Hashed(settings=settings, identity=Identity.from_seed(hashlib.sha256(name.encode()).digest()))


def pay(hashed: Hashed) -> Callable[[str, float], object]:
    return hashed.guard("transfer_money")(lambda to, amount: "sent")


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str | Callable[[], str] = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what() if callable(what) else what}")
        time.sleep(0.05)


def backend_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m hashed_backend ARGS` (what `hashed backend ARGS` runs), with its output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}
    result = subprocess.run(
        [sys.executable, "-m", "hashed_backend", *args],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"hashed backend {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result
