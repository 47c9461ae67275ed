"""`Hashed`: the one choke point every guarded call goes through.

`check(call)` decides and records the decision; `record(decision, outcome)` records what the tool did.
Everything an adapter or `@guard` needs is these two calls plus `refuse()`.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import getpass
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pluggy

from hashed._args import RecordedArgs, record_args
from hashed.config import HashedSettings
from hashed.errors import ConfigError, FrameworkVersionError, IdentityError, LedgerWriteError, PolicyDenied
from hashed.guard import GuardDecorator, make_guard
from hashed.identity import Identity, load_identity
from hashed.identity._rotation import resolve_key_file, rotate
from hashed.ledger import Ledger, Txn, VerifyReport
from hashed.plugins import get_plugin_manager
from hashed.policy import ApprovalSpec, Policy, PolicyEngine, Verdict, load_policy, parse_policy
from hashed.policy._approval import ApprovalRequest, ApprovalStore
from hashed.policy._windows import consume_windows, exceeded_window
from hashed.types import Decision, Effect, LedgerRecord, Outcome, Refusal, ToolCall

__all__ = ["Hashed", "current", "instrument"]

_log = logging.getLogger("hashed")
_STRICTNESS = {Effect.ALLOW: 0, Effect.PENDING: 1, Effect.DENY: 2}
_open: weakref.WeakSet[Hashed] = weakref.WeakSet()
F = TypeVar("F", bound=Callable[..., Any])


class Hashed:
    """Policy, identity and ledger of one agent. Works offline; thread-safe; usable from several processes.

    Args:
        home: the project folder (default: $HASHED_HOME or `./.hashed`).
        settings: complete settings; otherwise read from `home`'s config.toml and HASHED_* variables.
        identity: the agent key; otherwise decrypted from the key file.
        policy: a `Policy`, YAML text, or a path; otherwise the policy file.
        clock: nanoseconds since the epoch (tests freeze it).
        plugins: plugin objects to register besides the entry-point ones.
        **overrides: any `HashedSettings` field, e.g. `strict=True`, `durability="background"`.

    Example:
        >>> from hashed import Hashed
        >>> hashed = Hashed()                                  # doctest: +SKIP
        >>> @hashed.guard("transfer_money")                    # doctest: +SKIP
        ... def transfer_money(to: str, amount: float) -> str: ...
    """

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        settings: HashedSettings | None = None,
        identity: Identity | None = None,
        policy: Policy | str | Path | None = None,
        clock: Callable[[], int] | None = None,
        plugins: Iterable[object] = (),
        **overrides: Any,
    ) -> None:
        self.settings = settings if settings is not None else HashedSettings.load(home, **overrides)
        s = self.settings
        if identity is None and not s.home.is_dir():
            raise ConfigError(f"no Hashed project at {s.home.resolve()}: run `hashed init` there, or set HASHED_HOME")
        self._clock = clock or time.time_ns
        if identity is None:
            resolve_key_file(s.key_path, s.ledger_path)
            identity = load_identity(s.key_path, s.passphrase())
        self.identity = identity
        self._engine = PolicyEngine(self._read_policy(policy))
        self._pm = get_plugin_manager(
            autoload=not s.disable_plugin_autoload, disabled=s.disabled_plugins, plugins=plugins
        )
        self.ledger = Ledger(
            s.ledger_path,
            self.identity,
            clock=self._clock,
            background=s.durability == "background",
            synchronous=s.ledger_sync.upper(),
            on_write_error=s.ledger_on_error,
        )
        self.approvals = ApprovalStore(self.ledger.db, self._clock)
        self._refresh_hooks()
        self._closed = False
        _open.add(self)

    # -- policy ------------------------------------------------------------------------------------------

    def _read_policy(self, policy: Policy | str | Path | None) -> Policy:
        if isinstance(policy, Policy):
            return policy
        if isinstance(policy, str) and ("\n" in policy or ":" in policy):
            return parse_policy(policy)
        return load_policy(Path(policy) if policy is not None else self.settings.policy_path)

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
        self._engine = PolicyEngine(self._read_policy(policy))

    def reload_policy(self) -> None:
        """Read the policy file again."""
        self.set_policy(self.settings.policy_path)

    # -- plugins -----------------------------------------------------------------------------------------

    @property
    def plugins(self) -> pluggy.PluginManager:
        """The plugin manager (pluggy, project `hashed`)."""
        return self._pm

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module after start-up."""
        self._pm.register(plugin, name=name)
        self._refresh_hooks()

    def _refresh_hooks(self) -> None:
        hook = self._pm.hook
        self._decide_hooks = bool(hook.hashed_decide.get_hookimpls())
        self._redact_hooks = bool(hook.hashed_redact.get_hookimpls())
        sinks = hook.hashed_record_written.get_hookimpls()
        self.ledger.set_observer(self._record_written if sinks else None)

    def _record_written(self, record: LedgerRecord) -> None:
        for impl in self._pm.hook.hashed_record_written.get_hookimpls():
            try:
                impl.function(record=record)
            except Exception:  # sinks fail open: logged, never reaching the agent
                if self.settings.raise_internal_errors:
                    raise
                _log.exception("hashed: record sink %s failed", impl.plugin_name)

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

    def instrument(self) -> Hashed:
        """Guard every framework whose adapter is installed, and make this the process's default instance."""
        global _default
        with _default_lock:
            _default = self
        for impl in self._pm.hook.hashed_adapter_install.get_hookimpls():
            try:
                impl.function(hashed=self)
            except (ImportError, FrameworkVersionError) as exc:
                _log.info("hashed: adapter %s skipped: %s", impl.plugin_name, exc)
            except Exception:  # one adapter failing never stops the others
                if self.settings.raise_internal_errors:
                    raise
                _log.exception("hashed: adapter %s failed to install", impl.plugin_name)
        return self

    # -- the choke point ---------------------------------------------------------------------------------

    def check(self, call: ToolCall) -> Decision:
        """Decide `call` and commit the decision record before returning.

        A pending call waits up to `approval_wait` seconds for a person (0: returns pending at once).

        Raises:
            LedgerWriteError: the decision cannot be recorded and `ledger_on_error` is `closed`.
        """
        decision = self._decide(call)
        wait = self.settings.approval_wait
        if decision.effect is Effect.PENDING and not decision.shadow and wait > 0:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                time.sleep(min(self.settings.approval_poll, max(0.0, deadline - time.monotonic())))
                if self._answered(decision):
                    return self._decide(call)
        return decision

    async def acheck(self, call: ToolCall) -> Decision:
        """`check` for async code: waiting for approval never blocks the event loop."""
        decision = self._decide(call)
        wait = self.settings.approval_wait
        if decision.effect is Effect.PENDING and not decision.shadow and wait > 0:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                await asyncio.sleep(min(self.settings.approval_poll, max(0.0, deadline - time.monotonic())))
                if self._answered(decision):
                    return self._decide(call)
        return decision

    def _answered(self, decision: Decision) -> bool:
        return decision.approval_id is not None and self.approvals.get(decision.approval_id).status != "pending"

    def _decide(self, call: ToolCall) -> Decision:
        agent = call.agent or self.settings.agent
        engine = self._engine
        call_ref = os.urandom(16).hex()
        try:
            verdict = engine.evaluate(agent, call.tool, call.args)
            paths = [*engine.policy.redact, *self._redactions(call)] if self._redact_hooks else engine.policy.redact
            args = record_args(call.args, paths)
            if self._decide_hooks:
                draft = Decision(
                    verdict.effect,
                    verdict.reason,
                    verdict.rule_id,
                    engine.hash,
                    call_ref,
                    engine.shadow,
                    None,
                    call.tool,
                    agent,
                )
                tightened = self._tighten(call, draft)
                if tightened is not draft:
                    verdict = Verdict(
                        tightened.effect, tightened.reason, tightened.rule_id, verdict.windows, verdict.approval
                    )
        except Exception as exc:  # policy evaluation fails closed, with the reason
            if self.settings.raise_internal_errors:
                raise
            _log.exception("hashed: evaluating %s failed; the call is denied", call.tool)
            verdict = Verdict(Effect.DENY, f"the policy could not be evaluated ({type(exc).__name__}: {exc})", None)
            args = record_args({"unrecorded": "the arguments could not be recorded"})

        def commit(txn: Txn) -> Decision:
            return self._commit_decision(txn, call, agent, verdict, args, call_ref, engine)

        try:
            return self.ledger.transact(commit, durable=verdict.effect is Effect.PENDING)
        except LedgerWriteError as exc:
            if self.settings.ledger_on_error == "closed":
                raise
            _log.error(
                "hashed: the decision for %s could not be recorded (%s); running it anyway because "
                "ledger_on_error=open: %s %s (rule %s)",
                call.tool,
                exc,
                verdict.effect,
                verdict.reason,
                verdict.rule_id,
            )
            return Decision(
                verdict.effect,
                verdict.reason,
                verdict.rule_id,
                engine.hash,
                call_ref,
                engine.shadow,
                None,
                call.tool,
                agent,
            )

    def _commit_decision(
        self,
        txn: Txn,
        call: ToolCall,
        agent: str,
        verdict: Verdict,
        args: RecordedArgs,
        call_ref: str,
        engine: PolicyEngine,
    ) -> Decision:
        effect, reason, rule = verdict.effect, verdict.reason, verdict.rule_id
        approval_id = None
        if effect is not Effect.DENY and verdict.windows:
            over = exceeded_window(verdict.windows, txn, self._clock())
            if over is not None:
                effect, reason, rule = Effect.DENY, over[1], over[0].rule_id
        if effect is Effect.PENDING and not engine.shadow:
            effect, reason, approval_id = self._resolve_approval(txn, call, agent, verdict, args, call_ref)
        if effect is Effect.ALLOW or engine.shadow:
            consume_windows(verdict.windows, txn)
        txn.append(
            "decision",
            agent,
            {
                "call": call_ref,
                "tool": call.tool,
                "framework": call.framework,
                "run_id": _text(call.run_id),
                "call_id": _text(call.call_id),
                "parent_id": _text(call.parent_id),
                "args": args.stored,
                "args_digest": args.digest,
                "effect": effect.value,
                "reason": reason,
                "rule": rule,
                "policy": engine.hash,
                "shadow": engine.shadow,
                "approval": approval_id,
            },
            slow=args.slow,
        )
        return Decision(effect, reason, rule, engine.hash, call_ref, engine.shadow, approval_id, call.tool, agent)

    def _resolve_approval(
        self, txn: Txn, call: ToolCall, agent: str, verdict: Verdict, args: RecordedArgs, call_ref: str
    ) -> tuple[Effect, str, str | None]:
        spec = verdict.approval or ApprovalSpec()
        request = self.approvals.open_for(txn.conn, agent, call.tool, args.digest)
        if request is None:
            request_id = self.approvals.create(
                txn.conn,
                call=call_ref,
                agent=agent,
                tool=call.tool,
                args=args.stored,
                digest=args.digest,
                rule=verdict.rule_id,
                reason=verdict.reason,
                timeout_s=spec.timeout,
                on_timeout=spec.on_timeout,
            )
            return Effect.PENDING, verdict.reason, request_id
        if request.status == "pending":
            return Effect.PENDING, verdict.reason, request.id
        self.approvals.consume(txn.conn, request.id)
        txn.append(
            "approval",
            agent,
            {
                "call": call_ref,
                "approval": request.id,
                "requested_by": request.call,
                "verdict": request.status,
                "by": request.decided_by,
                "comment": request.comment,
            },
        )
        note = f": {request.comment}" if request.comment else ""
        if request.status == "approved":
            return Effect.ALLOW, f"approved by {request.decided_by} ({request.id}){note}", request.id
        if request.status == "denied":
            return Effect.DENY, f"{request.decided_by} denied approval {request.id}{note}", request.id
        timeout = "allowed" if request.on_timeout == "allow" else "denied"
        effect = Effect.ALLOW if request.on_timeout == "allow" else Effect.DENY
        return effect, f"no one answered approval {request.id} in time; {timeout} by the rule's on_timeout", request.id

    def record(self, decision: Decision, outcome: Outcome) -> None:
        """Commit the outcome record of a call that ran, linked to its decision.

        Raises:
            LedgerWriteError: the record cannot be written and `ledger_on_error` is `closed`.
        """
        error = outcome.error
        fields = {
            "call": decision.call_ref,
            "tool": decision.tool,
            "status": "ok" if error is None else "error",
            "error": None if error is None else f"{type(error).__name__}: {str(error)[:200]}",
            "result_digest": None if error is not None else record_args({"result": outcome.result}).digest,
            "duration_ns": outcome.duration_ns,
        }
        try:
            self.ledger.transact(lambda txn: txn.append("outcome", decision.agent, fields))
        except LedgerWriteError as exc:
            if self.settings.ledger_on_error == "closed":
                raise
            _log.error("hashed: outcome of %s not recorded (%s): %s", decision.tool, exc, fields)

    def refuse(self, decision: Decision, call: ToolCall | None = None, *, strict: bool | None = None) -> Refusal:
        """The value a refused call returns; raises `PolicyDenied` instead in strict mode."""
        self.raise_if_strict(decision, call, strict=strict)
        return Refusal.of(decision)

    def raise_if_strict(self, decision: Decision, call: ToolCall | None = None, *, strict: bool | None = None) -> None:
        """Raise `PolicyDenied` for a refused decision when strict mode is on (argument, else settings)."""
        if not decision.allowed and (self.settings.strict if strict is None else strict):
            raise PolicyDenied(decision, call or ToolCall(decision.tool, {}, agent=decision.agent))

    def guard(self, name: str | F | None = None, *, strict: bool | None = None) -> Any:
        """Decorate a function (sync or async) so every call is checked and recorded; see `hashed.guard`."""
        if callable(name):
            return make_guard(self, None, strict)(name)
        decorator: GuardDecorator = make_guard(self, name, strict)
        return decorator

    # -- approvals, verification, life cycle -----------------------------------------------------------

    def approve(self, request_id: str, *, by: str | None = None, comment: str | None = None) -> ApprovalRequest:
        """Approve a pending request (as the local user unless `by` is given)."""
        return self.approvals.decide(request_id, approve=True, by=by or _whoami(), comment=comment)

    def deny(self, request_id: str, *, by: str | None = None, comment: str | None = None) -> ApprovalRequest:
        """Deny a pending request."""
        return self.approvals.decide(request_id, approve=False, by=by or _whoami(), comment=comment)

    def rotate_key(self) -> Identity:
        """Replace the agent key: the old key signs the new one into the ledger; the key file is updated.

        Raises:
            IdentityError: no passphrase to encrypt the new key with.
        """
        passphrase = self.settings.passphrase()
        if not passphrase:
            raise IdentityError("set HASHED_KEY_PASSPHRASE to encrypt the new agent key")
        self.identity = rotate(self.ledger, self.settings.agent, self.settings.key_path, passphrase)
        return self.identity

    @property
    def public_key(self) -> str:
        """The agent's public key (hex): its identity in the ledger and at the backend."""
        return self.identity.public_key

    def verify(self) -> VerifyReport:
        """Verify this agent's whole ledger (after sealing what is waiting to be signed)."""
        self.ledger.flush()
        return self.ledger.verify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record is committed and signed."""
        return self.ledger.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush and close; idempotent. Also runs at interpreter exit."""
        if self._closed:
            return
        self._closed = True
        self.ledger.close(timeout)
        _open.discard(self)

    def __enter__(self) -> Hashed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


_default: Hashed | None = None
_default_lock = threading.Lock()


def current() -> Hashed:
    """The process's default `Hashed` (the one `instrument()` set, else one made from the settings)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Hashed()
        return _default


def instrument(home: str | Path | None = None, **overrides: Any) -> Hashed:
    """Guard every installed framework with a `Hashed` built from the settings; returns it."""
    return Hashed(home, **overrides).instrument()


@atexit.register
def _close_all() -> None:
    for instance in list(_open):
        instance.close(timeout=5.0)
