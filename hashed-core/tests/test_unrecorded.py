"""When the ledger cannot be written: `ledger_on_error = "open"` logs each record in full (issue #14, item 6), and
an outcome that cannot be written after its tool ran never turns the call into an error (item 7)."""

from __future__ import annotations

import logging

import orjson
import pytest

from hashed import LedgerWriteError
from hashed.ledger import read_ledger, verify_records
from hashed.testing import make_hashed

POLICY = """
version: 1
default: allow
rules:
  - {id: windowed, tools: [send_email], effect: allow, rate: {per: 1h, max_calls: 100}}
  - {id: ask-first, tools: [wire_money], effect: allow, approval: always}
"""
KEPT = "the record is kept in this log: "


def _unwritable(hashed, on: bool = True) -> None:
    """The ledger file stops (or starts again) taking writes, as when its disk is full or it turns read-only."""
    with hashed.ledger.db.lock:
        hashed.ledger.db.conn.execute(f"PRAGMA query_only = {int(on)}")


def _logged(caplog) -> list[dict]:
    return [orjson.loads(r.getMessage().split(KEPT, 1)[1]) for r in caplog.records if KEPT in r.getMessage()]


@pytest.mark.parametrize(
    ("durability", "tool"),
    [("immediate", "notify"), ("immediate", "send_email"), ("durable", "send_email"), ("durable", "wire_money")],
    ids=["immediate", "immediate-windowed", "durable-windowed", "durable-approval"],
)
def test_open_mode_logs_the_decision_record_in_full(tmp_path, caplog, durability, tool):
    hashed = make_hashed(
        tmp_path / ".hashed",
        policy=POLICY,
        durability=durability,
        ledger_on_error="open",
        approval_wait=0,
        raise_internal_errors=False,
    )
    ran = []

    @hashed.guard(tool)
    def body(to: str, amount: int) -> str:
        ran.append(to)
        return "sent"

    _unwritable(hashed)
    with caplog.at_level(logging.ERROR, logger="hashed"):
        body("b@example.com", amount=12)
    _unwritable(hashed, on=False)
    hashed.close()
    [decision] = [record for record in _logged(caplog) if record["kind"] == "decision"]
    assert decision["tool"] == tool and decision["agent"] == hashed.settings.agent
    assert decision["args"] == {"to": "b@example.com", "amount": 12}
    assert len(decision["call"]) > 8 and decision["args_digest"] and decision["policy"]
    assert decision["effect"] == ("pending" if tool == "wire_money" else "allow")
    if ran:  # the call ran: its outcome, under the same call id, is in the log or (durable: journal) the ledger
        stored = list(read_ledger(tmp_path / ".hashed" / "ledger.db"))
        outcomes = [r for r in [*_logged(caplog), *stored] if r["kind"] == "outcome"]
        assert [outcome["call"] for outcome in outcomes] == [decision["call"]]


def test_an_outcome_that_cannot_be_written_returns_the_result_and_refuses_the_next_call(tmp_path, caplog):
    hashed = make_hashed(tmp_path / ".hashed", durability="immediate", raise_internal_errors=False)
    ran = []

    @hashed.guard("transfer")
    def transfer(to: str) -> str:
        ran.append(to)
        if to == "acct-1":
            _unwritable(hashed)  # the disk fills up while the tool runs: its outcome cannot be written
        return f"sent to {to}"

    with caplog.at_level(logging.ERROR, logger="hashed"):
        assert transfer("acct-1") == "sent to acct-1"  # the side effect happened: the caller gets its result
    assert hashed.unrecorded_outcomes == 1
    [outcome] = _logged(caplog)
    assert outcome["kind"] == "outcome" and outcome["status"] == "ok"
    with pytest.raises(LedgerWriteError, match="outcome record"):
        transfer("acct-2")  # fail closed: nothing runs while an earlier outcome is unwritten
    assert ran == ["acct-1"]
    _unwritable(hashed, on=False)  # the disk recovers
    assert transfer("acct-3") == "sent to acct-3"
    hashed.close()
    records = list(read_ledger(tmp_path / ".hashed" / "ledger.db"))
    assert verify_records(records).ok
    calls = [(r["kind"], r.get("call")) for r in records if r["kind"] in ("decision", "outcome")]
    assert calls.count(("outcome", outcome["call"])) == 1  # written once, before the next call's decision
    assert [kind for kind, _ in calls] == ["decision", "outcome", "decision", "outcome"]


def test_in_open_mode_an_unwritable_outcome_is_logged_and_counted_and_calls_go_on(tmp_path, caplog):
    hashed = make_hashed(
        tmp_path / ".hashed", durability="immediate", ledger_on_error="open", raise_internal_errors=False
    )
    ran = []

    @hashed.guard("transfer")
    def transfer(to: str) -> str:
        ran.append(to)
        _unwritable(hashed)
        return f"sent to {to}"

    with caplog.at_level(logging.ERROR, logger="hashed"):
        assert transfer("acct-1") == "sent to acct-1"
        assert transfer("acct-2") == "sent to acct-2"  # open: the next call runs, its decision logged in full
    assert ran == ["acct-1", "acct-2"] and hashed.unrecorded_outcomes == 2
    logged = [(record["kind"], record["call"]) for record in _logged(caplog)]
    assert [kind for kind, _ in logged] == ["outcome", "decision", "outcome"]
    assert logged[1][1] == logged[2][1]  # the second call's decision and outcome share its call id
    _unwritable(hashed, on=False)
    hashed.close()
