"""`Hashed`: the one choke point every guarded call goes through.

`check(call)` decides and records the decision; `record(decision, outcome)` records what the tool did.
Everything an adapter or `@guard` needs is these two calls plus `refuse()`.
"""

from __future__ import annotations

import atexit
import dataclasses
import getpass
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hashed._args import record_args, text
from hashed._connect import backend_client, initial_engine, policy_from, start_checkpoint_timer, start_shipper
from hashed._decisions import (
    RECIPES,
    commit_decision,
    decision_fields,
    decision_of,
    decision_recipe,
    log_unrecorded,
    outcome_fields,
    outcome_recipe,
    recorded_args,
)
from hashed._guard import GuardDecorator, make_guard
from hashed._random import token16
from hashed._rotation import resolve_key_file, rotate
from hashed._unrecorded import Unrecorded
from hashed.config import HashedSettings
from hashed.errors import ConfigError, FrameworkVersionError, IdentityError, LedgerWriteError, PolicyDenied
from hashed.identity import Identity, load_identity
from hashed.ledger import Ledger, Txn, VerifyReport
from hashed.plugins import PluginManager, get_plugin_manager
from hashed.policy import Policy, PolicyEngine, Verdict, parse_policy
from hashed.policy._approval import ApprovalRequest, ApprovalStore
from hashed.types import Decision, Effect, LedgerRecord, Outcome, Refusal, ToolCall

__all__ = ["Hashed", "current", "instrument"]

_log = logging.getLogger("hashed")
_STRICTNESS = {Effect.ALLOW: 0, Effect.PENDING: 1, Effect.DENY: 2}
_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})  # values that cannot change after the call
# Values a journal's JSON carries exactly as the record would keep them: not floats (JSON has no NaN or infinity),
# not bytes (no JSON at all). Calls with others have their record's fields built before they are journaled.
_JSON_EXACT = frozenset({str, int, bool, type(None)})
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
        self._client = backend_client(s, lambda: self.identity)
        self._engine, self.policy_source = initial_engine(s, policy, self._client)
        self._pm = get_plugin_manager(
            autoload=not s.disable_plugin_autoload, disabled=s.disabled_plugins, plugins=plugins
        )
        self._pm_version = -1  # the plugin manager's version the hook flags below were read at
        self._forked = False  # set in a forked child: the ledger's threads, journal and connection are the parent's
        self._unrecorded = Unrecorded()
        self._open_ledger()
        self._closed = False
        _open.add(self)

    def _open_ledger(self, *, forked: bool = False) -> None:
        s = self.settings
        # A forked worker (multiprocessing) is often ended by a signal (Pool.terminate): in background mode its
        # records go to a journal of its own too, which survives that and which the parent commits when it closes.
        background = s.durability == "background"
        self.ledger = Ledger(
            s.ledger_path,
            self.identity,
            clock=self._clock,
            background=background,
            # Durable mode keeps each record in this process's journal (a memory copy, as safe against a killed
            # process as a SQLite commit); a power cut (ledger_sync=full) needs an fsync per record, so SQLite.
            journal=(s.durability == "durable" and s.ledger_sync == "normal") or (forked and background),
            synchronous=s.ledger_sync.upper(),
            on_write_error=s.ledger_on_error,
            recipes=RECIPES,
        )
        ledger = self.ledger
        self._checkpoints = start_checkpoint_timer(ledger.db, lambda: ledger.identity, s)
        self.approvals = ApprovalStore(self.ledger.db, self._clock)
        self.shipper = start_shipper(s, self._client, self.ledger, self._apply_backend_policy, self._clock)
        self._refresh_hooks()

    def _reopen(self) -> None:
        """In a forked child, at its first use: a ledger of its own (connection, journal, threads), same chain.

        What the parent made stays the parent's: its queue, journal and connection are left untouched here (kept
        referenced, so that nothing of theirs is ever closed from this process). Does nothing in the process that
        created this `Hashed`; the guarded call's path checks `_forked` itself, to save the call.
        """
        with _fork_lock:
            if not self._forked:  # never forked, or another thread of the child reopened it already
                return
            _inherited.append((self.ledger, self.approvals, self.shipper, self._client))
            self._forked = False
            self._unrecorded = Unrecorded()  # the parent writes its own
            self._client = backend_client(self.settings, lambda: self.identity)  # the parent's sockets stay its own
            self._open_ledger(forked=True)
            mp_util = sys.modules.get("multiprocessing.util")
            if mp_util is not None:  # a multiprocessing worker ends with os._exit: atexit never runs, these do
                mp_util.Finalize(None, self.close, exitpriority=100)

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

    def instrument(self) -> Hashed:
        """Guard every framework whose adapter is installed, and make this the process's default instance."""
        global _default
        with _default_lock:
            _default = self
        for plugin, error in self._pm.call_each("hashed_adapter_install", hashed=self):
            if isinstance(error, (ImportError, FrameworkVersionError)):
                _log.info("hashed: adapter %s skipped: %s", plugin, error)
            elif error is not None:  # one adapter failing never stops the others
                if self.settings.raise_internal_errors:
                    raise error
                _log.error("hashed: adapter %s failed to install", plugin, exc_info=error)
        return self

    # -- the choke point ---------------------------------------------------------------------------------

    def check(self, call: ToolCall) -> Decision:
        """Decide `call` and commit the decision record before returning.

        A pending call waits up to `approval_wait` seconds for a person (0: returns pending at once).

        Raises:
            LedgerWriteError: the decision cannot be recorded and `ledger_on_error` is `closed`.
        """
        if self._forked:
            self._reopen()
        decision = self._decide(call)
        if decision.effect is Effect.PENDING and self._asked_backend(decision):
            return self._decide(call)
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
        if self._forked:
            self._reopen()
        decision = self._decide(call)
        if decision.effect is Effect.PENDING and await _asyncio().to_thread(self._asked_backend, decision):
            return self._decide(call)
        wait = self.settings.approval_wait
        if decision.effect is Effect.PENDING and not decision.shadow and wait > 0:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                await _asyncio().sleep(min(self.settings.approval_poll, max(0.0, deadline - time.monotonic())))
                if self._answered(decision):
                    return self._decide(call)
        return decision

    def _asked_backend(self, decision: Decision) -> bool:
        """Whether the backend holds an answer to a pending call (a person may have answered while no agent ran)."""
        shipper = self.shipper
        if shipper is None or decision.shadow or decision.approval_id is None:
            return False
        return shipper.ask_now(decision.approval_id)

    def _answered(self, decision: Decision) -> bool:
        return decision.approval_id is not None and self.approvals.get(decision.approval_id).status != "pending"

    def _record_denial(self, call: ToolCall, reason: str) -> Decision:
        """Deny `call` for a reason the guard found before the policy could see it (its arguments were unreadable)."""
        if self._forked:
            self._reopen()
        return self._decide(call, Verdict(Effect.DENY, reason, None))

    def _decide(self, call: ToolCall, forced: Verdict | None = None) -> Decision:
        if self._unrecorded.waiting:
            self._unrecorded.write(self.ledger)
        agent = text(call.agent) if call.agent else self.settings.agent
        engine = self._engine
        call_ref = token16()
        if self._pm_version != self._pm.version:
            self._refresh_hooks()
        try:
            verdict = forced or engine.evaluate(agent, call.tool, call.args)
            if self._decide_hooks and forced is None:
                verdict = self._tighten_verdict(call, agent, verdict, engine, call_ref)
            paths = [*engine.policy.redact, *self._redactions(call)] if self._redact_hooks else engine.policy.redact
            if self.ledger.background and not verdict.windows and verdict.effect is not Effect.PENDING:
                return self._queue_decision(call, agent, verdict, engine, call_ref, paths)
            args = record_args(call.args, paths)
        except LedgerWriteError:
            raise
        except Exception as exc:  # policy evaluation fails closed, with the reason
            if self.settings.raise_internal_errors:
                raise
            _log.exception("hashed: evaluating %s failed; the call is denied", call.tool)
            verdict = Verdict(Effect.DENY, f"the policy could not be evaluated ({type(exc).__name__}: {exc})", None)
            args = record_args({"unrecorded": "the arguments could not be recorded"})

        def commit(txn: Txn) -> Decision:
            return commit_decision(txn, self.approvals, call, agent, verdict, args, call_ref, engine, self._clock())

        try:
            pending = verdict.effect is Effect.PENDING
            return self.ledger.transact(commit, durable=pending or self.ledger.journaled, counting=not pending)
        except LedgerWriteError as exc:
            if self.settings.ledger_on_error == "closed":
                raise
            effect, reason, rule = verdict.effect, verdict.reason, verdict.rule_id
            fields = decision_fields(call, args, call_ref, engine, effect, reason, rule, None)
            why = f"the decision for {call.tool} could not be recorded ({exc}); ledger_on_error=open lets it run"
            log_unrecorded("decision", agent, fields, why)
            return decision_of(call, agent, engine, call_ref, effect, reason, rule)

    def _tighten_verdict(
        self, call: ToolCall, agent: str, verdict: Verdict, engine: PolicyEngine, call_ref: str
    ) -> Verdict:
        draft = decision_of(call, agent, engine, call_ref, verdict.effect, verdict.reason, verdict.rule_id)
        tightened = self._tighten(call, draft)
        if tightened is draft:
            return verdict
        return Verdict(tightened.effect, tightened.reason, tightened.rule_id, verdict.windows, verdict.approval)

    def _queue_decision(
        self, call: ToolCall, agent: str, verdict: Verdict, engine: PolicyEngine, call_ref: str, paths: list[str]
    ) -> Decision:
        """Background mode, nothing to count or ask: queue the decision record.

        Its fields are built by the writer thread when the arguments cannot change meanwhile (plain scalars) and,
        in durable mode, the journal's JSON carries them exactly and nothing needs redacting; else here and now.
        """
        effect, reason, rule = verdict.effect, verdict.reason, verdict.rule_id
        fields: dict[str, Any] | tuple[Any, ...]
        slow = False
        if self.ledger.journaled:  # the journal keeps on disk what it is given, as JSON: nothing to redact
            plain = None if paths else _JSON_EXACT
        else:
            plain = _IMMUTABLE
        if plain is not None and plain.issuperset(map(type, call.args.values())):
            fields = decision_recipe(call, paths, call_ref, engine, verdict)
        else:
            args = recorded_args(call.args, paths, call.tool)
            fields, slow = decision_fields(call, args, call_ref, engine, effect, reason, rule, None), args.slow
        try:
            self.ledger.enqueue("decision", agent, fields, slow=slow)
        except LedgerWriteError as exc:
            if self.settings.ledger_on_error == "closed":
                raise
            if not isinstance(fields, dict):  # a recipe: build the record now, for the log
                args = recorded_args(call.args, paths, call.tool)
                fields = decision_fields(call, args, call_ref, engine, effect, reason, rule, None)
            why = f"the decision for {call.tool} could not be queued ({exc}); ledger_on_error=open lets it run"
            log_unrecorded("decision", agent, fields, why)
        return decision_of(call, agent, engine, call_ref, effect, reason, rule)

    def record(self, decision: Decision, outcome: Outcome) -> None:
        """Commit the outcome record of a call that ran, linked to its decision.

        Never raises `LedgerWriteError`: the tool has run, and an exception here would invite the caller to run it
        again. A record that cannot be written is logged in full and counted (`unrecorded_outcomes`); with
        `ledger_on_error = "closed"` it is written before the next guarded call, which is refused until it can be.
        """
        if self._forked:
            self._reopen()
        try:
            if self.ledger.background:
                if not self.ledger.journaled and outcome.error is None and type(outcome.result) in _IMMUTABLE:
                    # built by the writer; a journal keeps what it gets on disk, so it gets the digest only
                    self.ledger.enqueue("outcome", decision.agent, outcome_recipe(decision, outcome))
                else:
                    self.ledger.enqueue("outcome", decision.agent, outcome_fields(decision, outcome))
            else:
                fields = outcome_fields(decision, outcome)
                self.ledger.transact(lambda txn: txn.append("outcome", decision.agent, fields))
        except LedgerWriteError as exc:
            keep = self.settings.ledger_on_error == "closed"
            self._unrecorded.add(decision, outcome_fields(decision, outcome), exc, keep=keep)

    @property
    def unrecorded_outcomes(self) -> int:
        """Outcome records that could not be written when their call returned (each logged in full)."""
        return self._unrecorded.count

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
        self._reopen()
        return self.approvals.decide(request_id, approve=True, by=by or _whoami(), comment=comment)

    def deny(self, request_id: str, *, by: str | None = None, comment: str | None = None) -> ApprovalRequest:
        """Deny a pending request."""
        self._reopen()
        return self.approvals.decide(request_id, approve=False, by=by or _whoami(), comment=comment)

    def rotate_key(self) -> Identity:
        """Replace the agent key: the old key signs the new one into the ledger; the key file is updated.

        Raises:
            IdentityError: no passphrase to encrypt the new key with.
        """
        passphrase = self.settings.passphrase()
        if not passphrase:
            raise IdentityError("set HASHED_KEY_PASSPHRASE to encrypt the new agent key")
        self._reopen()
        self.identity = rotate(self.ledger, self.settings.agent, self.settings.key_path, passphrase)
        return self.identity

    @property
    def public_key(self) -> str:
        """The agent's public key (hex): its identity in the ledger and at the backend."""
        return self.identity.public_key

    def verify(self) -> VerifyReport:
        """Verify this agent's whole ledger (after sealing what is waiting to be signed)."""
        self._reopen()
        self.ledger.flush()
        return self.ledger.verify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record is committed and signed (False if some still cannot be)."""
        self._reopen()
        done = self.ledger.flush(timeout)
        if self._unrecorded.waiting:  # outcomes a failed write left behind: the ledger may take them now
            done = self._unrecorded.try_write(self.ledger) and self.ledger.flush(timeout)
        return done

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit and sign what is queued, ship what the backend will take within `flush_timeout`, close.

        Idempotent; runs at interpreter exit too. Never hangs on a dead backend: unshipped records stay in the
        ledger and go out on the next start.
        """
        if self._closed:
            return
        self._closed = True
        _open.discard(self)
        if self._forked:  # a forked child that never used it: the ledger, journal and threads are the parent's
            return
        self.ledger.flush(timeout)
        if self._unrecorded.try_write(self.ledger):
            self.ledger.flush(timeout)
        if self.shipper is not None:
            self.shipper.close(self.settings.flush_timeout)
        if self._checkpoints is not None:  # stopped first: the ledger's close signs the last checkpoint
            self._checkpoints.close()
        self.ledger.close(timeout)

    def __enter__(self) -> Hashed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _asyncio() -> Any:
    import asyncio  # only async callers wait this way: keep it out of `import hashed`

    return asyncio


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
    instance = _default
    if instance is not None and not instance._closed:  # on every call of `hashed.guard`: no lock
        return instance
    with _default_lock:
        if _default is None or _default._closed:
            _default = Hashed()
        return _default


def instrument(home: str | Path | None = None, **overrides: Any) -> Hashed:
    """Guard every installed framework with a `Hashed` built from the settings; returns it."""
    return Hashed(home, **overrides).instrument()


_fork_lock = threading.Lock()
_inherited: list[object] = []  # a forked child's copies of its parent's ledgers: never closed from the child


def _after_fork_in_child() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()  # the parent may have held it while forking
    for instance in list(_open):
        instance._forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_all() -> None:
    for instance in list(_open):
        instance.close(timeout=5.0)
