"""The policy in force and the plugins of a `Hashed`: replacing the policy, and the hooks a decision consults.

A plugin registered at any time acts from the next call: the choke point compares the plugin manager's version
with the one the hook flags were read at (`_refresh_hooks`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from hashed._connect import policy_from
from hashed._core._state import HashedState
from hashed.plugins import PluginManager
from hashed.policy import Policy, PolicyEngine, parse_policy
from hashed.types import Decision, Effect, LedgerRecord, ToolCall

__all__ = ["PolicyAndPlugins"]

_log = logging.getLogger("hashed")
_STRICTNESS = {Effect.ALLOW: 0, Effect.PENDING: 1, Effect.DENY: 2}


class PolicyAndPlugins(HashedState):
    """The policy and plugin part of `Hashed`."""

    # -- policy ------------------------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._engine.policy

    @property
    def policy_hash(self) -> str:
        """SHA-256 (hex) of the policy in force; every decision record carries it."""
        return self._engine.hash

    def set_policy(self, policy: Policy | str | Path) -> None:
        """Replace the policy (a `Policy`, YAML text or a file path) for every later call, atomically.

        Raises:
            PolicyFileError: the new policy does not validate; the old one stays in force.
        """
        self._engine = PolicyEngine(policy_from(policy))

    def _apply_backend_policy(self, text: str) -> None:
        self._engine = PolicyEngine(parse_policy(text, path="backend policy"))
        self.policy_source = "backend"

    def reload_policy(self) -> None:
        """Read the policy file again."""
        self.set_policy(self.settings.policy_path)

    # -- plugins -----------------------------------------------------------------------------------------

    @property
    def plugins(self) -> PluginManager:
        """The plugin manager (pluggy, project `hashed`); a plugin registered here acts from the next call."""
        return self._pm

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module after start-up."""
        self._pm.register(plugin, name=name)

    def _refresh_hooks(self) -> None:
        """Look again at which hooks have implementations, after any change to the plugins (see `PluginManager`)."""
        pm = self._pm
        self._pm_version = pm.version
        hook = pm.hook
        self._decide_hooks = bool(hook.hashed_decide.get_hookimpls())
        self._redact_hooks = bool(hook.hashed_redact.get_hookimpls())
        sinks = hook.hashed_record_written.get_hookimpls()
        self.ledger.set_observer(self._record_written if sinks else None)

    def _record_written(self, record: LedgerRecord) -> None:
        for plugin, error in self._pm.call_each("hashed_record_written", record=record):
            if error is not None:  # sinks fail open: logged, never reaching the agent
                if self.settings.raise_internal_errors:
                    raise error
                _log.error("hashed: record sink %s failed", plugin, exc_info=error)

    def _tighten(self, call: ToolCall, decision: Decision) -> Decision:
        for result in self._pm.hook.hashed_decide(call=call, decision=decision):
            if result is None:
                continue
            if _STRICTNESS[result.effect] > _STRICTNESS[decision.effect]:
                decision = dataclasses.replace(result, call_ref=decision.call_ref, policy_hash=decision.policy_hash)
            elif _STRICTNESS[result.effect] < _STRICTNESS[decision.effect]:
                _log.warning("hashed: a hashed_decide plugin tried to loosen a %s decision; ignored", decision.effect)
        return decision

    def _redactions(self, call: ToolCall) -> list[str]:
        paths: list[str] = []
        for result in self._pm.hook.hashed_redact(call=call):
            if result:
                paths.extend(result)
        return paths
