"""The choke point: `check` decides a call and commits its decision record; `record` commits what the tool did.

Evaluate (the policy engine) → tighten (`hashed_decide` plugins) → record (the ledger, in the way the durability
mode asks) → return the `Decision`. What a record contains is `hashed._decisions`'s business.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from hashed._args import record_args, text
from hashed._core._approvals import Approvals
from hashed._core._policy_and_plugins import PolicyAndPlugins
from hashed._decisions import decision_of, log_unrecorded, outcome_fields
from hashed._entries import DecisionEntry, OutcomeEntry
from hashed._random import token16
from hashed.errors import LedgerError, LedgerWriteError, PolicyDenied
from hashed.policy import PolicyEngine, Verdict
from hashed.types import Decision, Effect, Outcome, Refusal, ToolCall

__all__ = ["ChokePoint"]

_log = logging.getLogger("hashed")


class ChokePoint(PolicyAndPlugins, Approvals):
    """The decision path of `Hashed`: check, record, refuse."""

    def check(self, call: ToolCall) -> Decision:
        """Decide `call` and commit the decision record before returning.

        A pending call waits up to `approval_wait` seconds for a person (0: returns pending at once).

        Raises:
            LedgerWriteError: the decision cannot be recorded and `ledger_on_error` is `closed`.
        """
        if self._forked:
            self._reopen()
        decision = self._decide(call)
        # The shipping thread may have brought the answer back since `_decide` looked: then ask_now finds nothing
        # left to ask, and the local store holds the answer.
        if decision.effect is Effect.PENDING and (self._asked_backend(decision) or self._answered(decision)):
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
        if decision.effect is Effect.PENDING and (
            await _asyncio().to_thread(self._asked_backend, decision) or self._answered(decision)
        ):
            return self._decide(call)
        wait = self.settings.approval_wait
        if decision.effect is Effect.PENDING and not decision.shadow and wait > 0:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                await _asyncio().sleep(min(self.settings.approval_poll, max(0.0, deadline - time.monotonic())))
                if self._answered(decision):
                    return self._decide(call)
        return decision

    def _record_denial(self, call: ToolCall, reason: str) -> Decision:
        """Deny `call` for a reason the guard found before the policy could see it (its arguments were unreadable)."""
        if self._forked:
            self._reopen()
        return self._decide(call, Verdict(Effect.DENY, reason, None))

    def _decide(self, call: ToolCall, forced: Verdict | None = None) -> Decision:
        """Evaluate → tighten → record → return: what the record says is `hashed._decisions`'s, how the ledger's."""
        if self._unrecorded.waiting:
            self._unrecorded.write(self.ledger)
        agent = call.agent
        if not agent:
            agent = self.settings.agent
        elif not agent.isascii():  # (`text` itself, only where it can change something: a call less per call)
            agent = text(agent)
        engine = self._engine
        call_ref = token16()
        if self._pm_version != self._pm.version:
            self._refresh_hooks()
        try:
            verdict = forced or engine.evaluate(agent, call.tool, call.args)
            if self._decide_hooks and forced is None:
                verdict = self._tighten_verdict(call, agent, verdict, engine, call_ref)
            paths = [*engine.policy.redact, *self._redactions(call)] if self._redact_hooks else engine.policy.redact
            entry = DecisionEntry(call, agent, verdict, engine, call_ref, paths, self.approvals, self._clock)
            return self.ledger.record_decision(entry)
        except LedgerWriteError as exc:
            return self._unrecorded_decision(entry, call, exc)
        except LedgerError:
            raise
        except Exception as exc:  # evaluating the policy, or recording the arguments, fails closed, with the reason
            if self.settings.raise_internal_errors:
                raise
            _log.exception("hashed: evaluating %s failed; the call is denied", call.tool)
            verdict = Verdict(Effect.DENY, f"the policy could not be evaluated ({type(exc).__name__}: {exc})", None)
            args = record_args({"unrecorded": "the arguments could not be recorded"})
            entry = DecisionEntry(call, agent, verdict, engine, call_ref, (), self.approvals, self._clock, args)
        try:
            return self.ledger.record_decision(entry)
        except LedgerWriteError as exc:
            return self._unrecorded_decision(entry, call, exc)

    def _unrecorded_decision(self, entry: DecisionEntry, call: ToolCall, exc: LedgerWriteError) -> Decision:
        """A decision the ledger could not take: refused (`closed`), or logged in full and let run (`open`)."""
        if self.settings.ledger_on_error == "closed":
            raise exc
        why = f"the decision for {call.tool} could not be recorded ({exc}); ledger_on_error=open lets it run"
        log_unrecorded("decision", entry.agent, entry.fields()[0], why)
        return entry.decision

    def _tighten_verdict(
        self, call: ToolCall, agent: str, verdict: Verdict, engine: PolicyEngine, call_ref: str
    ) -> Verdict:
        draft = decision_of(call, agent, engine, call_ref, verdict.effect, verdict.reason, verdict.rule_id)
        tightened = self._tighten(call, draft)
        if tightened is draft:
            return verdict
        return Verdict(tightened.effect, tightened.reason, tightened.rule_id, verdict.windows, verdict.approval)

    def record(self, decision: Decision, outcome: Outcome) -> None:
        """Commit the outcome record of a call that ran, linked to its decision.

        Never raises `LedgerWriteError`: the tool has run, and an exception here would invite the caller to run it
        again. A record that cannot be written is logged in full and counted (`unrecorded_outcomes`); with
        `ledger_on_error = "closed"` it is written before the next guarded call, which is refused until it can be.
        """
        if not isinstance(outcome, Outcome):  # else it fails deep in the ledger, naming nothing
            raise TypeError(
                f"record() takes the call's Outcome, not {type(outcome).__name__}: build it with "
                "hashed.adapters.outcome(start, result=...) or Outcome(result=..., error=..., duration_ns=...)"
            )
        if self._forked:
            self._reopen()
        try:
            self.ledger.record_outcome(OutcomeEntry(decision, outcome))
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


def _asyncio() -> Any:
    import asyncio  # only async callers wait this way: keep it out of `import hashed`

    return asyncio
