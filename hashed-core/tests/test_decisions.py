"""`hashed._decisions`: what a decision and an outcome record say, and the step that commits a decision.

The same record must come out whichever way it is built: now, in the caller (immediate mode, or arguments that
may change), or later from a recipe in the background writer. And one approval lets exactly one call through.
"""

from __future__ import annotations

import logging

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashed._args import record_args
from hashed._decisions import (
    RECIPES,
    commit_decision,
    decision_fields,
    decision_recipe,
    log_unrecorded,
    outcome_fields,
    outcome_recipe,
    recorded_args,
)
from hashed.identity import Identity
from hashed.ledger import Ledger
from hashed.ledger._approvals import ApprovalStore
from hashed.policy import PolicyEngine, parse_policy
from hashed.testing import FIXED_SEED, FrozenClock
from hashed.testing.contract import CONTRACT_POLICY
from hashed.types import Decision, Effect, Outcome, ToolCall

DECISION = Decision(Effect.ALLOW, "ok", "transfers", "h" * 64, "ref-1", False, None, "transfer_money", "bot")


@pytest.fixture
def engine() -> PolicyEngine:
    return PolicyEngine(parse_policy(CONTRACT_POLICY))  # transfers: ≤ 1000, 3 per hour, approval over 500


@pytest.fixture
def ledger(tmp_path, hashed_clock):
    instance = Ledger(tmp_path / "ledger.db", Identity.from_seed(FIXED_SEED), clock=hashed_clock)
    yield instance
    instance.close()


def _commit(ledger: Ledger, approvals: ApprovalStore, engine: PolicyEngine, call: ToolCall, ref: str) -> Decision:
    verdict = engine.evaluate("bot", call.tool, call.args)
    args = record_args(call.args)
    return ledger.transact(
        lambda txn: commit_decision(txn, approvals, call, "bot", verdict, args, ref, engine, ledger.clock())
    )


@pytest.mark.parametrize(
    "args",
    [
        {"to": "acct-1", "amount": 20},
        {"amount": 12.5, "flag": True, "nothing": None, "raw": b"\x00\xff"},
        {"ключ": "значение", "emoji": "😀", "𝄞": 1},  # a key beyond the BMP: the slow canonical path
    ],
)
@pytest.mark.parametrize("paths", [[], ["to"]])
def test_decision_recipe_builds_the_record_decision_fields_builds(engine, args, paths):
    call = ToolCall(
        "transfer_money", args, agent="bot", framework="test", run_id="run-1", call_id="c-1", parent_id="p-1"
    )
    verdict = engine.evaluate("bot", "transfer_money", args)
    recorded = record_args(args, paths)
    now = decision_fields(call, recorded, "ref-1", engine, verdict.effect, verdict.reason, verdict.rule_id, None)

    later, slow = RECIPES["decision"](decision_recipe(call, paths, "ref-1", engine, verdict))

    assert later == now
    assert slow == recorded.slow
    assert now["tool"] == "transfer_money" and now["run_id"] == "run-1" and now["policy"] == engine.hash
    assert now["args_digest"] == record_args(args).digest  # the digest is over the arguments before redaction


@pytest.mark.parametrize("result", ["sent", None, 7, 2.5, True])
def test_outcome_recipe_builds_the_record_outcome_fields_builds(result):
    outcome = Outcome(result=result, duration_ns=1234)

    later, slow = RECIPES["outcome"](outcome_recipe(DECISION, outcome))

    assert later == outcome_fields(DECISION, outcome)
    assert not slow
    assert later["result_digest"] == record_args({"result": result}).digest  # the digest of the canonical bytes


@settings(max_examples=200)
@given(st.one_of(st.none(), st.text()))
def test_the_result_digest_of_text_is_the_canonical_digest(result):
    """Text and None take a fast path to their digest: it must give the bytes RFC 8785 gives."""

    fields = outcome_fields(DECISION, Outcome(result=result))

    assert fields["result_digest"] == record_args({"result": result}).digest


def test_outcome_fields_of_a_failed_call_keep_the_error_short_and_no_result():

    fields = outcome_fields(DECISION, Outcome(result="ignored", error=ValueError("x" * 500), duration_ns=9))

    assert fields["status"] == "error"
    assert fields["error"] == "ValueError: " + "x" * 200
    assert fields["result_digest"] is None
    assert (fields["call"], fields["tool"], fields["duration_ns"]) == ("ref-1", "transfer_money", 9)


def test_recorded_args_that_cannot_be_recorded_say_so_instead_of_failing(caplog):
    class Unreadable(dict):
        def items(self):  # type: ignore[override]
            raise RuntimeError("no")

    with caplog.at_level(logging.ERROR, logger="hashed"):
        args = recorded_args({"thing": Unreadable(a=1)}, [], "transfer_money")

    assert args.stored == {"unrecorded": "the arguments could not be recorded"}
    assert "the arguments of transfer_money could not be recorded" in caplog.text


def test_an_argument_whose_repr_fails_is_recorded_with_a_note_saying_so():
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

        __str__ = __repr__

    stored = record_args({"thing": Unprintable(), Unprintable(): 1}).stored
    assert stored == {"thing": "<Unprintable object: its repr() failed>", "<Unprintable object: its str() failed>": 1}


def test_log_unrecorded_keeps_the_whole_record_in_the_error_log(caplog):
    fields = {"call": "ref-1", "args": record_args({"amount": 1.5}).stored, "when": object()}

    with caplog.at_level(logging.ERROR, logger="hashed"):
        log_unrecorded("decision", "bot", fields, "the disk is full")

    [entry] = caplog.records
    assert entry.levelno == logging.ERROR and "the disk is full" in entry.getMessage()
    document = orjson.loads(entry.getMessage().split("this log: ", 1)[1])
    assert document["kind"] == "decision" and document["agent"] == "bot" and document["call"] == "ref-1"
    assert document["args"] == {"amount": 1.5}


def test_commit_decision_denies_the_call_over_a_rate_window(ledger, engine):
    approvals = ApprovalStore(ledger.db, ledger.clock)
    call = ToolCall("transfer_money", {"amount": 10}, agent="bot")

    decisions = [_commit(ledger, approvals, engine, call, f"ref-{n}") for n in range(4)]

    assert [d.effect for d in decisions] == [Effect.ALLOW] * 3 + [Effect.DENY]
    assert decisions[3].rule_id == "transfers" and "3 calls per 1h" in decisions[3].reason
    bodies = [r.body for r in ledger.records()]
    assert [(b["call"], b["effect"]) for b in bodies] == [(d.call_ref, d.effect.value) for d in decisions]


def test_commit_decision_one_approval_lets_exactly_one_call_through(ledger, engine, hashed_clock: FrozenClock):
    approvals = ApprovalStore(ledger.db, hashed_clock)
    call = ToolCall("transfer_money", {"amount": 700}, agent="bot")

    first = _commit(ledger, approvals, engine, call, "ref-1")
    again = _commit(ledger, approvals, engine, call, "ref-2")
    assert first.effect is again.effect is Effect.PENDING
    assert first.approval_id is not None and again.approval_id == first.approval_id  # one request per call

    approvals.decide(first.approval_id, approve=True, by="ana", comment="fine")
    allowed = _commit(ledger, approvals, engine, call, "ref-3")
    after = _commit(ledger, approvals, engine, call, "ref-4")

    assert allowed.effect is Effect.ALLOW and allowed.reason == f"approved by ana ({first.approval_id}): fine"
    assert after.effect is Effect.PENDING and after.approval_id != first.approval_id
    records = [(r.kind, r.body["call"]) for r in ledger.records()]
    assert records == [
        ("decision", "ref-1"),
        ("decision", "ref-2"),
        ("approval", "ref-3"),  # the answer, recorded before the decision it made
        ("decision", "ref-3"),
        ("decision", "ref-4"),
    ]
    approval = next(r.body for r in ledger.records() if r.kind == "approval")
    assert (approval["approval"], approval["verdict"], approval["by"]) == (first.approval_id, "approved", "ana")


def test_commit_decision_a_denied_approval_denies_the_call(ledger, engine):
    approvals = ApprovalStore(ledger.db, ledger.clock)
    call = ToolCall("transfer_money", {"amount": 700}, agent="bot")
    pending = _commit(ledger, approvals, engine, call, "ref-1")

    approvals.decide(pending.approval_id, approve=False, by="ana")
    denied = _commit(ledger, approvals, engine, call, "ref-2")

    assert denied.effect is Effect.DENY
    assert denied.reason == f"ana denied approval {pending.approval_id}"
