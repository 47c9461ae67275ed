"""`Ledger.record_decision` / `record_outcome`: each durability mode keeps what it promises for each kind of step.

The core hands the ledger an entry and never asks which mode it is in; these tests drive the real entries of
`hashed._decisions` through a real ledger in each mode and look at what another connection (another process)
sees when the call returns, and at what the committed record holds.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hashed._decisions import RECIPES
from hashed._entries import DecisionEntry, OutcomeEntry
from hashed.errors import LedgerError
from hashed.identity import Identity
from hashed.ledger import Ledger
from hashed.ledger._approvals import ApprovalStore
from hashed.policy import PolicyEngine, parse_policy
from hashed.testing import FIXED_SEED
from hashed.testing.contract import CONTRACT_POLICY
from hashed.types import Effect, Outcome, ToolCall

MODES = {"immediate": {}, "background": {"background": True}, "durable": {"journal": True}}


@pytest.fixture(params=list(MODES))
def ledger(request, tmp_path, hashed_clock):
    instance = Ledger(
        tmp_path / "ledger.db",
        Identity.from_seed(FIXED_SEED),
        clock=hashed_clock,
        recipes=RECIPES,
        **MODES[request.param],
    )
    yield instance
    instance.close()


@pytest.fixture
def engine() -> PolicyEngine:
    return PolicyEngine(parse_policy(CONTRACT_POLICY))  # transfers: ≤ 1000, 3 per hour, approval over 500


def _entry(ledger: Ledger, engine: PolicyEngine, call: ToolCall, ref: str, paths: tuple[str, ...] = ()):
    verdict = engine.evaluate("bot", call.tool, call.args)
    return DecisionEntry(call, "bot", verdict, engine, ref, paths, ApprovalStore(ledger.db, ledger.clock), ledger.clock)


def _other_process_sees(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_a_call_that_asks_a_person_is_on_disk_when_record_decision_returns(ledger, engine):
    decision = ledger.record_decision(_entry(ledger, engine, ToolCall("transfer_money", {"amount": 700}), "ref-1"))

    assert decision.effect is Effect.PENDING and decision.approval_id is not None
    # A person (the CLI, the backend through the shipper) answers what is on disk, in any mode.
    assert _other_process_sees(ledger.path, "SELECT id, status FROM approvals") == [(decision.approval_id, "pending")]
    kinds = _other_process_sees(ledger.path, "SELECT kind FROM records")
    assert ("decision",) in kinds


def test_a_window_count_is_seen_by_every_process_when_record_decision_returns(ledger, engine):
    call = ToolCall("transfer_money", {"amount": 10})
    answers = [ledger.record_decision(_entry(ledger, engine, call, f"ref-{n}")).effect for n in range(4)]

    assert answers == [Effect.ALLOW] * 3 + [Effect.DENY]  # 3 per hour
    # Counted in SQLite at once, whatever the mode does with the records themselves.
    assert _other_process_sees(ledger.path, "SELECT count(*) FROM usage WHERE scope LIKE '%transfers%'") == [(3,)]
    ledger.flush()
    effects = [r.body["effect"] for r in ledger.records() if r.kind == "decision"]
    assert effects == ["allow"] * 3 + ["deny"]


def test_arguments_the_caller_changes_after_the_decision_are_recorded_as_they_were_decided(ledger, engine):
    recipients = ["acct-1"]
    call = ToolCall("run_query", {"sql": "select 1", "to": recipients})
    decision = ledger.record_decision(_entry(ledger, engine, call, "ref-1"))
    recipients.append("attacker")  # a list may change after the call: the queued record must not follow it

    ledger.flush()
    (record,) = [r for r in ledger.records() if r.kind == "decision"]
    assert decision.allowed and record.body["args"]["to"] == ["acct-1"]


def test_an_outcome_keeps_the_digest_of_the_result_in_every_mode(ledger, engine):
    decision = ledger.record_decision(_entry(ledger, engine, ToolCall("run_query", {"sql": "select 1"}), "ref-1"))
    ledger.record_outcome(OutcomeEntry(decision, Outcome("42 rows", None, 1_000)))
    ledger.record_outcome(OutcomeEntry(decision, Outcome(None, ValueError("no table"), 2_000)))

    ledger.flush()
    outcomes = [r.body for r in ledger.records() if r.kind == "outcome"]
    assert [(o["call"], o["status"]) for o in outcomes] == [("ref-1", "ok"), ("ref-1", "error")]
    assert len(outcomes[0]["result_digest"]) == 64 and "42 rows" not in str(outcomes[0])
    assert outcomes[1]["error"] == "ValueError: no table"
    assert ledger.verify().ok


def test_a_closed_ledger_refuses_a_record_in_every_mode_rather_than_drop_it(ledger, engine):
    decision = ledger.record_decision(_entry(ledger, engine, ToolCall("run_query", {"sql": "select 1"}), "ref-1"))
    ledger.close()

    with pytest.raises(LedgerError, match="is closed"):
        ledger.record_outcome(OutcomeEntry(decision, Outcome("42 rows", None, 1_000)))


def test_a_record_wakes_a_writer_that_went_to_sleep(ledger, engine, monkeypatch):
    """After a quiet spell the writer sleeps until a record wakes it (`_kick.py`): the record is committed without
    a flush. Here it would otherwise sleep for an hour, so a lost wake-up fails the test instead of slowing it."""
    import hashed.ledger._writer as writer_module
    from hashed.ledger._kick import Kick

    if not ledger.background:
        pytest.skip("immediate mode commits in the caller")

    class Watched(Kick):
        """The writer's kick, telling the test when the writer goes to sleep for the hour."""

        def __init__(self) -> None:
            super().__init__()
            self.asleep = threading.Event()

        def wait(self, timeout: float) -> bool:
            if timeout == 3600.0:
                self.asleep.set()  # the writer blocks in the wait below before this test's thread runs again
            return super().wait(timeout)

    monkeypatch.setattr(writer_module, "_ASLEEP", 3600.0)
    monkeypatch.setattr(writer_module, "_WARM", 0.0)  # asleep as soon as nothing is left to do
    writer, watched = ledger._writer, Watched()
    writer._kick, old = watched, writer._kick
    old.set()  # wake it from its current wait, onto the watched kick
    assert watched.asleep.wait(60), "the writer never went to sleep"

    ledger.record_decision(_entry(ledger, engine, ToolCall("run_query", {"sql": "select 1"}), "ref-wake"))

    count, deadline = "SELECT count(*) FROM records WHERE kind = 'decision'", time.monotonic() + 60
    while _other_process_sees(ledger.path, count) != [(1,)] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _other_process_sees(ledger.path, count) == [(1,)]
    writer._kick.set()  # (the ledger's close wakes the watched kick itself)
