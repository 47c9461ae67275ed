"""`hashed._connect`: which policy a `Hashed` starts with, and the link to the backend when one is configured.

The backend is a stand-in with the `BackendClient` methods the start-up path uses, so each case says exactly
what the backend answered; the HTTP client itself is tested in tests/shipping.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hashed._connect import backend_client, initial_engine, policy_from, start_checkpoint_timer, start_shipper
from hashed.config import HashedSettings
from hashed.errors import BackendError, BackendUnavailable, ConfigError
from hashed.identity import Identity
from hashed.ledger._db import Database
from hashed.policy import Policy, parse_policy
from hashed.shipping import PolicyAnswer, PolicyCache
from hashed.testing import FIXED_SEED
from hashed.types import Effect

LOCAL = "version: 1\ndefault: deny\nrules: [{id: local, tools: [pay], effect: allow}]\n"
REMOTE = "version: 1\ndefault: deny\nrules: [{id: remote, tools: [pay], effect: allow}]\n"
URL = "http://backend.invalid:8400"


class Backend:
    """A backend client stand-in: answers `policy()` from a script, and notes what it was asked."""

    def __init__(self, *answers: PolicyAnswer | BackendError | None) -> None:
        self.answers = list(answers)
        self.asked: list[str | None] = []
        self.registered: list[str] = []
        self.timeouts: list[float] = []
        self.closed = 0

    def with_timeout(self, timeout: float) -> Backend:
        self.timeouts.append(timeout)
        return self

    def policy(self, etag: str | None) -> PolicyAnswer | None:
        self.asked.append(etag)
        answer = self.answers.pop(0)
        if isinstance(answer, BackendError):
            raise answer
        return answer

    def register(self, name: str) -> dict[str, str]:
        self.registered.append(name)
        return {}

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / ".hashed"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True)
def _no_api_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("HASHED_API_KEY", raising=False)


def _settings(home: Path, **values: object) -> HashedSettings:
    return HashedSettings(home=home, agent="bot", **values)  # type: ignore[arg-type]


def _rule(engine) -> str | None:
    return engine.evaluate("bot", "pay", {}).rule_id


def test_policy_from_takes_a_policy_yaml_text_or_a_file(tmp_path):
    policy = parse_policy(LOCAL)
    path = tmp_path / "policy.yaml"
    path.write_text(LOCAL)

    assert policy_from(policy) is policy
    assert policy_from(LOCAL).rules[0].id == "local"
    assert policy_from(path).rules[0].id == "local"
    assert policy_from(str(path)).rules[0].id == "local"


def test_backend_client_is_none_offline(home):
    assert backend_client(_settings(home), lambda: Identity.from_seed(FIXED_SEED)) is None


def test_backend_client_without_an_api_key_says_how_to_make_one(home):
    with pytest.raises(ConfigError, match="HASHED_API_KEY"):
        backend_client(_settings(home, backend_url=URL), lambda: Identity.from_seed(FIXED_SEED))


def test_backend_client_talks_to_the_configured_backend(home):
    client = backend_client(_settings(home, backend_url=URL + "/", api_key="k"), lambda: Identity.from_seed(FIXED_SEED))

    assert client is not None and client.base_url == URL
    client.close()


def test_a_policy_given_as_an_argument_is_used_and_named(home, tmp_path):
    path = tmp_path / "given.yaml"
    path.write_text(LOCAL)

    engine, source = initial_engine(_settings(home), REMOTE, None)
    from_file, file_source = initial_engine(_settings(home), path, None)

    assert (_rule(engine), source) == ("remote", "argument")
    assert (_rule(from_file), file_source) == ("local", str(path))


def test_offline_the_policy_file_is_used(home):
    settings = _settings(home)
    settings.policy_path.write_text(LOCAL)

    engine, source = initial_engine(settings, None, None)

    assert (_rule(engine), source) == ("local", str(settings.policy_path))


def test_a_cached_backend_policy_is_used_without_asking_the_backend(home):
    PolicyCache(home).store(PolicyAnswer(REMOTE, '"etag-3"', 3, "agent"))
    backend = Backend()

    engine, source = initial_engine(_settings(home, backend_url=URL), None, backend)

    assert (_rule(engine), source) == ("remote", "backend (cached v3)")
    assert backend.asked == []


def test_with_nothing_cached_the_backend_is_asked_once_briefly_and_its_policy_cached(home):
    backend = Backend(PolicyAnswer(REMOTE, '"etag-4"', 4, "agent"))

    engine, source = initial_engine(_settings(home, backend_url=URL), None, backend)

    assert (_rule(engine), source) == ("remote", "backend (v4)")
    assert backend.asked == [None] and backend.timeouts == [2.0] and backend.closed == 1
    cached = PolicyCache(home).load()
    assert cached is not None and (cached.version, cached.yaml) == (4, REMOTE)


def test_a_backend_that_does_not_know_the_agent_yet_registers_it_first(home):
    backend = Backend(
        BackendError("agent unknown", status=404, code="agent_unknown"), PolicyAnswer(REMOTE, "e", 5, "agent")
    )

    engine, source = initial_engine(_settings(home, backend_url=URL), None, backend)

    assert backend.registered == ["bot"]
    assert (_rule(engine), source) == ("remote", "backend (v5)")


def test_a_cached_policy_that_no_longer_validates_is_set_aside(home, caplog):
    PolicyCache(home).store(PolicyAnswer("rules: [{effect: maybe}]", "e", 2, "agent"))
    backend = Backend(PolicyAnswer(REMOTE, "e", 6, "agent"))

    with caplog.at_level(logging.ERROR, logger="hashed"):
        engine, source = initial_engine(_settings(home, backend_url=URL), None, backend)

    assert (_rule(engine), source) == ("remote", "backend (v6)")
    assert "the cached backend policy does not validate" in caplog.text


def test_a_backend_that_is_down_leaves_the_local_file_in_force_until_its_policy_arrives(home):
    settings = _settings(home, backend_url=URL)
    settings.policy_path.write_text(LOCAL)

    engine, source = initial_engine(settings, None, Backend(BackendUnavailable("connection refused")))

    assert _rule(engine) == "local"
    assert source == f"{settings.policy_path} (until the backend's arrives)"


@pytest.mark.parametrize(("fail_closed", "effect"), [(True, Effect.DENY), (False, Effect.ALLOW)])
def test_with_no_policy_anywhere_fail_closed_decides_and_says_why(home, fail_closed, effect):
    settings = _settings(home, backend_url=URL, fail_closed=fail_closed)

    engine, source = initial_engine(settings, None, Backend(BackendUnavailable("connection refused")))
    verdict = engine.evaluate("bot", "anything", {})

    assert source == "none (fail_closed)"
    assert verdict.effect is effect and verdict.rule_id is None
    assert URL in verdict.reason and f"fail_closed is {fail_closed}" in verdict.reason
    assert engine.policy == Policy(default=effect.value)


def test_offline_nothing_ships_and_no_checkpoint_timer_runs_when_both_periods_are_zero(home, tmp_path):
    db = Database(tmp_path / "ledger.db")
    settings = _settings(home, checkpoint_records=0, checkpoint_interval=0)

    assert start_shipper(settings, None, None, lambda text: None, lambda: 0) is None  # type: ignore[arg-type]
    assert start_checkpoint_timer(db, lambda: Identity.from_seed(FIXED_SEED), settings) is None

    timer = start_checkpoint_timer(db, lambda: Identity.from_seed(FIXED_SEED), _settings(home, checkpoint_records=5))
    assert timer is not None
    timer.close()
    db.close()
