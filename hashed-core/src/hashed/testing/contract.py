"""The cases every adapter must pass, on its own framework: subclass `AdapterContract` and give it a harness.

A harness drives the framework's real agent loop with the framework's own fake or replay model, so that the
model calls one tool once with given arguments and then finishes. Every harness has these tools, whose bodies
append the arguments they received to `run.executed` (and raise `tool_raises` when given):

    transfer_money(to: str, amount: float)
    delete_file(path: str)
    run_query(sql: str, database: str = "prod")     # a default the model may leave out
    write_file(path: str)                           # one parameter: frameworks may pass a lone input
    relay(path: str)                                # its body calls delete_file(path) through the framework

Some cases need more than one model tool call; a harness offers them as optional methods (see
`AdapterHarness`), and a case a framework cannot express is skipped with the reason. Each case is a way a
denied call could run anyway (issue #13): the arguments policy sees must be the arguments the body receives.

Example:
    class TestContract(AdapterContract):
        @pytest.fixture
        def harness(self) -> AdapterHarness:
            return StrandsHarness()
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from hashed._core import Hashed
from hashed.errors import PolicyDenied
from hashed.plugins import hookimpl
from hashed.testing._harness import CONTRACT_POLICY, AdapterHarness, HarnessRun
from hashed.types import LedgerRecord

__all__ = ["CONTRACT_POLICY", "AdapterContract", "AdapterHarness", "HarnessRun"]


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

    def test_a_tool_error_json_cannot_carry_is_recorded(self, harness: AdapterHarness, guarded: Hashed) -> None:
        # A lone surrogate in what a tool raises once kept the call's outcome out of the ledger (a TypeError
        # from inside the guard, after the tool ran, in place of the tool's own error).
        error = ValueError("bank \udc80 is down")
        run = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": 5}, tool_raises=error)
        outcomes = [r.body for r in _records(guarded) if r.kind == "outcome"]  # a framework may retry the tool
        assert run.executed and len(outcomes) == len(run.executed)
        assert {(o["status"], o["error"]) for o in outcomes} == {("error", "ValueError: bank \\udc80 is down")}
        self._assert_verifies(guarded)

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

    # -- ways around the guard (issue #13): each must fail ------------------------------------------------------

    def test_an_omitted_default_is_what_policy_sees(self, harness: AdapterHarness, guarded: Hashed) -> None:
        run = harness.run(guarded, "run_query", {"sql": "drop table t"})
        assert run.executed == []
        [decision] = _decisions(guarded)
        assert decision.body["effect"] == "deny" and decision.body["rule"] == "no-prod"
        assert decision.body["args"] == {"sql": "drop table t", "database": "prod"}
        assert run.tool_result is not None and "never touch the production database" in run.tool_result
        allowed = harness.run(guarded, "run_query", {"sql": "select 1", "database": "dev"})
        assert allowed.executed == [{"sql": "select 1", "database": "dev"}]

    def test_a_single_input_is_the_parameter_it_binds_to(self, harness: AdapterHarness, guarded: Hashed) -> None:
        single = getattr(harness, "run_single_input", None)
        if single is None:
            pytest.skip(f"{harness.framework} passes no bare single input to a tool")
        run = single(guarded, "write_file", "/etc/passwd")
        assert run.executed == []
        [decision] = _decisions(guarded)
        assert (decision.body["effect"], decision.body["args"]) == ("deny", {"path": "/etc/passwd"})

    def test_arguments_changed_after_the_check_are_never_run_unchecked(
        self, harness: AdapterHarness, guarded: Hashed
    ) -> None:
        rewritten = getattr(harness, "run_rewritten", None)
        if rewritten is None:
            pytest.skip(f"nothing in {harness.framework} can change a tool's arguments after the guard's hook")
        run = rewritten(guarded, "transfer_money", {"to": "acct-9", "amount": 50}, {"to": "acct-9", "amount": 5000})
        assert [e for e in run.executed if float(e["amount"]) != 50] == []
        decisions = _decisions(guarded)
        allowed = [d for d in decisions if d.body["effect"] == "allow"]
        assert all(float(d.body["args"]["amount"]) == 50 for d in allowed), decisions
        if run.executed:  # the framework ran the checked arguments after all: that was decided and signed
            assert allowed
        else:
            assert any(d.body["effect"] == "deny" for d in decisions)

    def test_a_nested_tool_call_is_decided_too(self, harness: AdapterHarness, guarded: Hashed) -> None:
        run = harness.run(guarded, "relay", {"path": "/srv/data"})
        assert run.executed == [{"path": "/srv/data"}]  # relay's body ran; the delete_file it asked for did not
        decisions = [(d.body["tool"], d.body["effect"]) for d in _decisions(guarded)]
        assert decisions == [("relay", "allow"), ("delete_file", "deny")]
        self._assert_verifies(guarded)

    def test_a_failure_inside_the_guard_blocks_the_tool(self, harness: AdapterHarness, tmp_path: Any) -> None:
        from hashed.testing import make_hashed

        class Broken:
            @hookimpl
            def hashed_decide(self) -> None:  # fewer arguments than the spec: pluggy allows it
                raise NotImplementedError("a plugin bug")

        with make_hashed(tmp_path / "failing", policy=CONTRACT_POLICY, raise_internal_errors=False) as hashed:
            hashed.plugins.register(Broken())  # any public route: it acts from the next call
            run = harness.run(hashed, "transfer_money", {"to": "acct-9", "amount": 5})
            assert run.executed == []
            [decision] = _decisions(hashed)
            assert decision.body["effect"] == "deny"
            assert "NotImplementedError: a plugin bug" in decision.body["reason"]

    @pytest.mark.parametrize(
        "amount",
        [math.nan, math.inf, -math.inf, 10**400, "NaN", "Infinity"],
        ids=["nan", "inf", "-inf", "10**400", "'NaN'", "'Infinity'"],
    )
    def test_a_number_that_is_not_finite_never_passes_a_limit(
        self, harness: AdapterHarness, guarded: Hashed, amount: Any
    ) -> None:
        run = harness.run(guarded, "transfer_money", {"to": "acct-9", "amount": amount})
        assert run.executed == []
        [decision] = _decisions(guarded)
        assert decision.body["effect"] == "deny"

    def test_odd_bytes_are_decided_and_recorded(self, harness: AdapterHarness, guarded: Hashed) -> None:
        denied = harness.run(guarded, "write_file", {"path": "/etc/pass\x00wd\ud800"})
        assert denied.executed == []
        allowed = harness.run(guarded, "write_file", {"path": "/tmp/ok\x00\ud800"})
        assert len(allowed.executed) == 1
        effects = [d.body["effect"] for d in _decisions(guarded)]
        assert effects == ["deny", "allow"]
        self._assert_verifies(guarded)

    def test_a_tool_class_that_runs_its_body_itself_is_decided_too(
        self, harness: AdapterHarness, guarded: Hashed
    ) -> None:
        overriding = getattr(harness, "run_overriding", None)
        if overriding is None:
            pytest.skip(f"no {harness.framework} tool class can reach its body past where the adapter decides")
        assert overriding(guarded, "delete_file", {"path": "/x"}).executed == []
        relayed = overriding(guarded, "relay", {"path": "/srv/data"})
        assert relayed.executed == [{"path": "/srv/data"}]  # relay's body ran; the delete_file it asked for did not
        assert overriding(guarded, "write_file", {"path": "/tmp/x"}).executed == [{"path": "/tmp/x"}]
        decisions = [(d.body["tool"], d.body["effect"]) for d in _decisions(guarded)]  # one per run, no more
        assert decisions == [
            ("delete_file", "deny"),
            ("relay", "allow"),
            ("delete_file", "deny"),
            ("write_file", "allow"),
        ]
        self._assert_verifies(guarded)

    def test_parallel_calls_never_overshoot_a_window(self, harness: AdapterHarness, guarded: Hashed) -> None:
        parallel = getattr(harness, "run_parallel", None)
        if parallel is None:
            pytest.skip(f"{harness.framework} runs one tool call at a time")
        run = parallel(guarded, [("transfer_money", {"to": f"acct-{i}", "amount": 10}) for i in range(6)])
        assert len(run.executed) == 3  # rate: 3 per hour
        assert sorted(d.body["effect"] for d in _decisions(guarded)) == ["allow"] * 3 + ["deny"] * 3
        self._assert_verifies(guarded)
