"""The cases every adapter must pass, on its own framework: subclass `AdapterContract` and give it a harness.

A harness drives the framework's real agent loop with the framework's own fake or replay model, so that the
model calls one tool once with given arguments and then finishes. Two tools exist in every harness:
`transfer_money(to: str, amount: float)` and `delete_file(path: str)`; their bodies append their arguments
to `run.executed` (and raise `tool_raises` when given).

Example:
    class TestContract(AdapterContract):
        @pytest.fixture
        def harness(self) -> AdapterHarness:
            return StrandsHarness()
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import pytest

from hashed._core import Hashed
from hashed.errors import PolicyDenied
from hashed.types import LedgerRecord

__all__ = ["CONTRACT_POLICY", "AdapterContract", "AdapterHarness", "HarnessRun"]

CONTRACT_POLICY = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000}}
    rate: {per: 1h, max_calls: 3}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
"""


@dataclasses.dataclass
class HarnessRun:
    """What one agent run did.

    Attributes:
        executed: the arguments of every tool body that actually ran, in order.
        tool_result: the text the model was given as the tool's result (None if it got none).
        error: the exception that escaped the run, if one did.
    """

    executed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tool_result: str | None = None
    error: BaseException | None = None


class AdapterHarness(Protocol):
    """Drives one framework's real agent loop offline.

    Example:
        run = harness.run(hashed, "transfer_money", {"to": "acct-9", "amount": 50})
        assert run.executed == [{"to": "acct-9", "amount": 50}]
    """

    framework: str

    def run(
        self,
        hashed: Hashed,
        tool: str,
        args: dict[str, Any],
        *,
        tool_raises: BaseException | None = None,
        installed: bool = False,
    ) -> HarnessRun:
        """Run an agent whose model calls `tool(**args)` once, guarded through the adapter's one added line.

        With `installed=True` the agent is built with no Hashed code at all and relies on `install()` having
        run (the zero-code path).
        """
        ...

    def install(self, hashed: Hashed) -> None:
        """Guard the framework process-wide (what `hashed.instrument()` does for this adapter)."""
        ...

    def uninstall(self) -> None:
        """Undo `install`."""
        ...


def _records(hashed: Hashed) -> list[LedgerRecord]:
    hashed.flush()
    return list(hashed.ledger.records())


def _decisions(hashed: Hashed) -> list[LedgerRecord]:
    return [r for r in _records(hashed) if r.kind == "decision"]


class AdapterContract:
    """Shared cases. Subclasses provide a `harness` fixture; `hashed_offline` comes from hashed.testing."""

    @pytest.fixture
    def guarded(self, hashed_offline: Hashed) -> Hashed:
        hashed_offline.set_policy(CONTRACT_POLICY)
        return hashed_offline

    def _assert_verifies(self, hashed: Hashed) -> None:
        report = hashed.verify()
        assert report.ok, report.error
        assert report.unsigned == 0
        assert all(r.signed for r in _records(hashed))

    def test_allowed_call_runs_and_records_decision_and_outcome(self, harness: AdapterHarness, guarded: Hashed) -> None:
        run = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 50})
        assert run.error is None
        assert [(e["to"], float(e["amount"])) for e in run.executed] == [("acct-9", 50.0)]
        decision, outcome = _records(guarded)
        assert (decision.kind, decision.body["effect"], decision.body["rule"]) == ("decision", "allow", "transfers")
        assert decision.body["framework"] == harness.framework
        assert decision.body["tool"] == "transfer_money"
        assert (outcome.kind, outcome.body["status"], outcome.body["call"]) == ("outcome", "ok", decision.body["call"])
        self._assert_verifies(guarded)

    def test_denied_tool_never_runs_and_model_sees_refusal(self, harness: AdapterHarness, guarded: Hashed) -> None:
        run = harness.run(guarded, "delete_file", {"path": "/etc/passwd"})
        assert run.executed == []
        assert run.error is None
        [decision] = _records(guarded)
        assert decision.body["effect"] == "deny"
        assert run.tool_result is not None
        assert "delete_file denied by policy (rule no-delete): Agents never delete files." in run.tool_result
        self._assert_verifies(guarded)

    def test_over_limit_is_denied(self, harness: AdapterHarness, guarded: Hashed) -> None:
        run = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 5000})
        assert run.executed == []
        [decision] = _decisions(guarded)
        assert decision.body["effect"] == "deny"
        assert "over the limit of 1000" in decision.body["reason"]
        assert run.tool_result is not None and "over the limit of 1000" in run.tool_result

    def test_rate_window_denies_the_fourth_call(self, harness: AdapterHarness, guarded: Hashed) -> None:
        for amount in (1, 2, 3):
            assert len(harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": amount}).executed) == 1
        run = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 4})
        assert run.executed == []
        assert _decisions(guarded)[-1].body["reason"].startswith("rate limit reached")

    def test_pending_approval_blocks_until_approved(self, harness: AdapterHarness, guarded: Hashed) -> None:
        run = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 700})
        assert run.executed == []
        assert run.tool_result is not None and "waiting for human approval" in run.tool_result
        [request] = guarded.approvals.list("pending")
        guarded.approve(request.id, by="alice", comment="known payee")
        again = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 700})
        assert len(again.executed) == 1
        kinds = [(r.kind, r.body.get("effect") or r.body.get("verdict")) for r in _records(guarded)]
        assert kinds == [("decision", "pending"), ("approval", "approved"), ("decision", "allow"), ("outcome", None)]
        self._assert_verifies(guarded)

    def test_tool_error_is_recorded_with_its_type(self, harness: AdapterHarness, guarded: Hashed) -> None:
        harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 5}, tool_raises=ValueError("bank is down"))
        outcome = _records(guarded)[-1]
        assert outcome.kind == "outcome"
        assert outcome.body["status"] == "error"
        assert outcome.body["error"] == "ValueError: bank is down"

    def test_strict_mode_raises_policy_denied(self, harness: AdapterHarness, guarded: Hashed) -> None:
        guarded.settings = guarded.settings.model_copy(update={"strict": True})
        run = harness.run(guarded, "delete_file", {"path": "/tmp/x"})
        assert run.executed == []
        chain: list[BaseException] = []
        error = run.error
        while error is not None and error not in chain:
            chain.append(error)
            error = error.__cause__ or error.__context__
        assert any(isinstance(e, PolicyDenied) for e in chain), run.error

    def test_install_is_idempotent_and_uninstall_stops_guarding(self, harness: AdapterHarness, guarded: Hashed) -> None:
        harness.install(guarded)
        harness.install(guarded)
        try:
            denied = harness.run(guarded, "delete_file", {"path": "/x"}, installed=True)
            assert denied.executed == []
            allowed = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 5}, installed=True)
            assert len(allowed.executed) == 1
            assert [r.kind for r in _records(guarded)] == ["decision", "decision", "outcome"]
        finally:
            harness.uninstall()
        unguarded = harness.run(guarded, "delete_file", {"path": "/x"}, installed=True)
        assert len(unguarded.executed) == 1
        assert len(_records(guarded)) == 3
