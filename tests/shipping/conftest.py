"""End to end: real agents (hashed-core) against a real backend process on loopback (hashed-backend)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hashed import Hashed, Identity
from hashed.config import HashedSettings
from hashed_backend.testing import LocalBackend, Organisation

pytestmark = pytest.mark.e2e

POLICY = """\
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 100}}
  - id: big-transfers
    tools: [big_transfer]
    effect: allow
    approval: always
"""


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    with LocalBackend(tmp_path_factory.mktemp("backend")) as running:
        yield running


@pytest.fixture(scope="session")
def org(backend: LocalBackend) -> Organisation:
    organisation = backend.bootstrap()
    organisation.put_policy(POLICY)
    return organisation


_agents = iter(range(1, 10_000))


def make_agent(home: Path, url: str, key: str, name: str, **overrides: object) -> Hashed:
    home.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "agent": name,
        "backend_url": url,
        "api_key": key,
        "ship_interval": 0.05,
        "policy_interval": 0.2,
        "request_timeout": 2.0,
        "flush_timeout": 5.0,
        "disable_plugin_autoload": True,
        "raise_internal_errors": True,
        **overrides,
    }
    identity = Identity.from_seed(hashlib.sha256(name.encode()).digest())  # one key per agent name
    return Hashed(settings=HashedSettings(home=home, **values), identity=identity)  # type: ignore[arg-type]


@pytest.fixture
def agent_factory(tmp_path: Path, org: Organisation) -> Iterator[Callable[..., Hashed]]:
    made: list[Hashed] = []

    def factory(
        name: str | None = None,
        *,
        url: str | None = None,
        organisation: Organisation | None = None,
        home: Path | None = None,
        **overrides: object,
    ) -> Hashed:
        organisation = organisation or org
        name = name or f"agent-{next(_agents)}"
        key = overrides.pop("api_key", None) or organisation.create_key("agent", name)
        instance = make_agent(home or tmp_path / name, url or organisation.url, str(key), name, **overrides)
        made.append(instance)
        return instance

    yield factory
    for instance in made:
        instance.close(timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def backend_chain(org: Organisation, name: str) -> dict[str, object]:
    agent = next(a for a in org.call("GET", "/v1/agents") if a["name"] == name)
    chain: dict[str, object] = org.call("GET", f"/v1/agents/{agent['id']}/chain", verify="true")
    return chain
