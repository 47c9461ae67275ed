"""Where the policy comes from, and the link to the backend when one is configured.

With a backend, the policy in force is the one the backend serves, kept on disk as the last good copy so a
restart with the backend down uses it. With no copy yet, Hashed asks the backend once (briefly); if that
fails it falls back to the local policy file, and with no file either, `fail_closed` decides: every call is
denied (the default) or allowed, and each such decision says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hashed.config import HashedSettings
from hashed.errors import BackendError, ConfigError, PolicyFileError
from hashed.identity import Identity
from hashed.ledger import Ledger
from hashed.ledger._checkpoints import CheckpointTimer
from hashed.ledger._db import Database
from hashed.policy import Policy, PolicyEngine, load_policy, parse_policy

if TYPE_CHECKING:  # httpx and the shipper load only when a backend is configured (import time, memory)
    from hashed.shipping import BackendClient, PolicyAnswer, Shipper

__all__ = ["backend_client", "initial_engine", "policy_from", "start_checkpoint_timer", "start_shipper"]

_log = logging.getLogger("hashed")
_FIRST_FETCH_TIMEOUT = 2.0


def backend_client(
    settings: HashedSettings, identity: Callable[[], Identity], timeout: float | None = None
) -> BackendClient | None:
    """A client for the configured backend, or None when Hashed runs offline.

    Raises:
        ConfigError: a backend URL without an API key.
    """
    if not settings.backend_url:
        return None
    from hashed.shipping import BackendClient

    api_key = settings.agent_api_key()
    if api_key is None:
        raise ConfigError(
            f"HASHED_BACKEND_URL is {settings.backend_url} but no agent API key is set: "
            "set HASHED_API_KEY (make one with: hashed agent create NAME, or hashed init --connect)"
        )
    return BackendClient(settings.backend_url, api_key, identity, timeout=timeout or settings.request_timeout)


def policy_from(given: Policy | str | Path) -> Policy:
    """A policy given as a `Policy`, as YAML text, or as the path of a file."""
    if isinstance(given, Policy):
        return given
    if isinstance(given, str) and ("\n" in given or ":" in given):
        return parse_policy(given)
    return load_policy(Path(given))


def initial_engine(
    settings: HashedSettings, given: Policy | str | Path | None, client: BackendClient | None
) -> tuple[PolicyEngine, str]:
    """The policy to start with, and where it came from (for the log and `hashed status`)."""
    if given is not None:
        return PolicyEngine(policy_from(given)), "argument" if not isinstance(given, Path) else str(given)
    if client is None:
        return PolicyEngine(load_policy(settings.policy_path)), str(settings.policy_path)
    from hashed.shipping import PolicyCache

    cache = PolicyCache(settings.home)
    cached = cache.load()
    if cached is not None:
        try:
            return PolicyEngine(
                parse_policy(cached.yaml, path=str(cache.text_path))
            ), f"backend (cached v{cached.version})"
        except PolicyFileError as exc:
            _log.error("hashed: the cached backend policy does not validate (%s); ignoring it", exc)
    answer = _first_fetch(client, settings.agent)
    if answer is not None:
        engine = PolicyEngine(parse_policy(answer.yaml, path="backend policy"))
        cache.store(answer)
        return engine, f"backend (v{answer.version})"
    if settings.policy_path.exists():
        _log.warning("hashed: using the local policy %s until the backend's arrives", settings.policy_path)
        return PolicyEngine(load_policy(settings.policy_path)), f"{settings.policy_path} (until the backend's arrives)"
    effect: Literal["allow", "deny"] = "deny" if settings.fail_closed else "allow"
    reason = (
        f"no policy is known yet (the backend at {settings.backend_url} has not answered and none is cached); "
        f"{'denied' if settings.fail_closed else 'allowed'} because fail_closed is {settings.fail_closed}"
    )
    return PolicyEngine(Policy(default=effect), default_reason=reason), "none (fail_closed)"


def _first_fetch(client: BackendClient, agent: str) -> PolicyAnswer | None:
    """One quick try at the backend's policy (registering first if the backend does not know this agent)."""
    quick = client.with_timeout(_FIRST_FETCH_TIMEOUT)
    try:
        try:
            return quick.policy(None)
        except BackendError as exc:
            if exc.code != "agent_unknown":
                raise
            quick.register(agent)
            return quick.policy(None)
    except BackendError as exc:
        _log.warning("hashed: could not fetch the policy from the backend yet: %s", exc)
        return None
    finally:
        quick.close()


def start_shipper(
    settings: HashedSettings,
    client: BackendClient | None,
    ledger: Ledger,
    on_policy: Callable[[str], None],
    clock: Callable[[], int],
) -> Shipper | None:
    """Start the background link to the backend, when one is configured."""
    if client is None:
        return None
    from hashed.shipping import PolicyCache, Shipper

    return Shipper(
        client=client,
        db=ledger.db,
        ledger_path=ledger.path,
        agent=settings.agent,
        cache=PolicyCache(settings.home),
        on_policy=on_policy,
        clock=clock,
        ship_interval=settings.ship_interval,
        policy_interval=settings.policy_interval,
        queued=lambda: ledger.queued,
    )


def start_checkpoint_timer(
    db: Database, identity: Callable[[], Identity], settings: HashedSettings
) -> CheckpointTimer | None:
    """The periodic checkpoints of a long-running agent (#22), or None when both periods are 0 (close only)."""
    if not settings.checkpoint_records and not settings.checkpoint_interval:
        return None
    return CheckpointTimer(
        db, identity, every_records=settings.checkpoint_records, every_seconds=settings.checkpoint_interval
    )
