from __future__ import annotations

import asyncio
import inspect
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from hashed import Effect, PolicyDenied, Refusal
from hashed.testing import make_hashed

from .conftest import TRANSFER_POLICY


def _transfer(hashed, ran=None):
    @hashed.guard("transfer_money")
    def transfer_money(to: str, amount: float, currency: str = "USD") -> str:
        """Send money."""
        if ran is not None:
            ran.append((to, amount))
        return f"sent {amount} {currency} to {to}"

    return transfer_money


def _decisions(hashed):
    hashed.flush()
    return [r.body for r in hashed.ledger.records() if r.kind == "decision"]


def test_signature_and_docstring_are_preserved(transfers):
    def transfer_money(to: str, amount: float, currency: str = "USD") -> str:
        """Send money."""
        return "sent"

    fn = transfers.guard("transfer_money")(transfer_money)
    assert fn.__name__ == "transfer_money"
    assert fn.__doc__ == "Send money."
    assert inspect.signature(fn) == inspect.signature(transfer_money)
    assert list(inspect.signature(fn).parameters) == ["to", "amount", "currency"]


def test_allowed_call_runs_and_returns_its_value(transfers):
    assert _transfer(transfers)("acct-9", 50) == "sent 50 USD to acct-9"
    decision = _decisions(transfers)[0]
    assert decision["args"] == {"to": "acct-9", "amount": 50, "currency": "USD"}
    assert decision["effect"] == "allow" and decision["rule"] == "small-transfers"
    assert decision["policy"] == transfers.policy_hash


@pytest.mark.parametrize("how", ["positional", "keyword", "mixed"])
def test_limit_holds_however_the_amount_is_passed(transfers, how):
    ran = []
    fn = _transfer(transfers, ran)
    calls = {
        "positional": lambda: fn("acct-9", 5000),
        "keyword": lambda: fn(to="acct-9", amount=5000),
        "mixed": lambda: fn("acct-9", amount=5000),
    }
    result = calls[how]()
    assert ran == []
    assert isinstance(result, Refusal)
    assert result.decision.effect is Effect.DENY
    assert result == "transfer_money denied by policy (rule small-transfers): amount=5000 is over the limit of 1000"


def test_strict_mode_raises_policy_denied(transfers):
    fn = transfers.guard("transfer_money", strict=True)(lambda to, amount: "sent")
    with pytest.raises(PolicyDenied) as info:
        fn("acct-9", 5000)
    assert info.value.decision.rule_id == "small-transfers"
    assert info.value.call.args == {"to": "acct-9", "amount": 5000}


def test_a_call_with_wrong_arguments_fails_like_the_function_and_records_nothing(transfers):
    fn = _transfer(transfers)
    with pytest.raises(TypeError):
        fn("acct-9")
    with pytest.raises(TypeError):
        fn("acct-9", 5, to="x")
    assert _decisions(transfers) == []


def test_varargs_kwargs_and_methods_are_bound_by_name(transfers):
    transfers.set_policy("default: allow\nrules: [{id: cap, tools: ['*'], effect: allow, limits: {amount: {max: 10}}}]")

    class Bank:
        @transfers.guard("pay")
        def pay(self, *accounts: str, **options: float) -> str:
            return "paid"

    assert isinstance(Bank().pay("a", "b", amount=11), Refusal)
    assert Bank().pay("a", amount=10) == "paid"
    assert _decisions(transfers)[-1]["args"] == {"accounts": ["a"], "amount": 10}


def test_the_error_of_a_tool_is_recorded_and_re_raised(transfers):
    @transfers.guard("transfer_money")
    def transfer_money(to: str, amount: float) -> str:
        raise ConnectionError("bank unreachable")

    with pytest.raises(ConnectionError):
        transfer_money("acct-9", 5)
    transfers.flush()
    outcome = list(transfers.ledger.records())[-1].body
    assert outcome["status"] == "error" and outcome["error"] == "ConnectionError: bank unreachable"
    assert outcome["result_digest"] is None


async def test_async_functions_are_guarded_too(transfers):
    ran = []

    @transfers.guard("transfer_money")
    async def transfer_money(to: str, amount: float) -> str:
        await asyncio.sleep(0)
        ran.append(amount)
        return "sent"

    assert inspect.iscoroutinefunction(transfer_money)
    assert await transfer_money("acct-9", 5) == "sent"
    assert isinstance(await transfer_money("acct-9", 5000), Refusal)
    assert ran == [5]
    assert [d["effect"] for d in _decisions(transfers)] == ["allow", "deny"]


def test_rate_window_counts_only_allowed_calls(transfers):
    fn = _transfer(transfers)
    for _ in range(10):
        assert fn("acct-9", 1).startswith("sent")
    assert isinstance(fn("acct-9", 5000), Refusal)  # denied by the limit: not counted
    refused = fn("acct-9", 1)
    assert refused.decision.reason == "rate limit reached: 10 calls per 1h, 10 already made"


def test_windows_roll_with_the_clock(transfers, hashed_clock):
    fn = _transfer(transfers)
    for _ in range(10):
        fn("acct-9", 1)
    assert isinstance(fn("acct-9", 1), Refusal)
    hashed_clock.advance(3601)
    assert fn("acct-9", 1).startswith("sent")


def test_sum_window_survives_a_restart(home, hashed_clock):
    with make_hashed(home, policy=TRANSFER_POLICY, clock=hashed_clock) as first:
        for _ in range(9):
            assert _transfer(first)("acct-9", 500).startswith("sent")
    with make_hashed(home, policy=TRANSFER_POLICY, clock=hashed_clock) as second:
        refused = _transfer(second)("acct-9", 600)
        assert refused.decision.effect is Effect.DENY
        assert refused.decision.reason == (
            "window limit reached: amount may sum to 5000 per 1d; 4500 used, this call adds 600"
        )
        assert _transfer(second)("acct-9", 500).startswith("sent")


_SPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hashed.testing import make_hashed
    policy = (
        "rules: [{id: r, tools: [spend], effect: allow, limits: {amount: {window: {per: 1d, max_sum: 100}}}},"
        " {id: c, tools: [call], effect: allow, rate: {per: 1h, max_calls: 10}}]"
    )
    mode = sys.argv[2]  # a durability, or "full": durable with ledger_sync=full (group commit)
    settings = {"ledger_sync": "full"} if mode == "full" else {"durability": mode}
    with make_hashed(Path(sys.argv[1]), policy=policy, **settings) as hashed:
        spend = hashed.guard("spend")(lambda amount: "ok")
        call = hashed.guard("call")(lambda: "ok")
        print("ready", flush=True)
        sys.stdin.readline()  # every process starts calling at once: a race, not a queue
        print(sum(spend(1) == "ok" for _ in range(60)), sum(call() == "ok" for _ in range(8)))
    """
)


@pytest.mark.parametrize("durability", ["durable", "immediate", "background", "full"])
def test_windows_are_shared_by_every_process_of_the_agent_in_every_mode(home, durability):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SPENDER, str(home), durability],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    assert [proc.stdout.readline() for proc in procs] == ["ready\n"] * 3
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.close()
    allowed = []
    for proc in procs:
        with proc.stdout:
            allowed.append([int(n) for n in proc.stdout.read().split()])
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0, 0]
    assert sum(spent for spent, _ in allowed) == 100, allowed  # the sum window: 180 tried
    assert sum(calls for _, calls in allowed) == 10  # the call count: 24 tried


def test_pending_call_returns_a_refusal_and_runs_once_approved(transfers):
    ran = []
    fn = _transfer(transfers, ran)
    pending = fn("acct-9", 700)
    assert pending.decision.effect is Effect.PENDING and ran == []
    assert "waiting for human approval" in pending
    assert fn("acct-9", 700).decision.approval_id == pending.decision.approval_id  # no duplicate request
    [request] = transfers.approvals.list("pending")
    transfers.approve(request.id, by="alice", comment="expected invoice")
    assert fn("acct-9", 700).startswith("sent")
    again = fn("acct-9", 700)  # one approval lets one call through
    assert again.decision.effect is Effect.PENDING and again.decision.approval_id != request.id
    assert ran == [("acct-9", 700)]


def test_a_denied_approval_refuses_the_call(transfers):
    fn = _transfer(transfers)
    pending = fn("acct-9", 900)
    transfers.deny(pending.decision.approval_id, by="bob", comment="unknown payee")
    refused = fn("acct-9", 900)
    assert refused.decision.effect is Effect.DENY
    assert refused.decision.reason == f"bob denied approval {pending.decision.approval_id}: unknown payee"


def test_an_unanswered_approval_times_out_to_its_default(transfers, hashed_clock):
    fn = _transfer(transfers)
    fn("acct-9", 900)
    hashed_clock.advance(16 * 60)
    refused = fn("acct-9", 900)
    assert refused.decision.effect is Effect.DENY and "in time" in refused.decision.reason


def test_a_waiting_call_proceeds_when_approved_meanwhile(home, hashed_clock):
    with make_hashed(home, policy=TRANSFER_POLICY, clock=hashed_clock, approval_wait=10, approval_poll=0.02) as hashed:

        def approve_soon():
            while not hashed.approvals.list("pending"):
                threading.Event().wait(0.01)
            hashed.approve(hashed.approvals.list("pending")[0].id, by="carol")

        approver = threading.Thread(target=approve_soon)
        approver.start()
        assert _transfer(hashed)("acct-9", 800).startswith("sent")
        approver.join()
        kinds = [(r.kind, r.body.get("effect")) for r in hashed.ledger.records()]
        assert kinds == [("decision", "pending"), ("approval", None), ("decision", "allow"), ("outcome", None)]


def test_a_waiting_call_gives_up_after_the_wait(home, hashed_clock):
    with make_hashed(home, policy=TRANSFER_POLICY, clock=hashed_clock, approval_wait=0.1, approval_poll=0.02) as hashed:
        refused = _transfer(hashed)("acct-9", 800)
        assert refused.decision.effect is Effect.PENDING


def test_shadow_mode_records_the_decision_but_never_blocks(transfers):
    transfers.set_policy(TRANSFER_POLICY.replace("default: deny", "default: deny\nmode: shadow"))
    ran = []
    fn = _transfer(transfers, ran)
    assert fn("acct-9", 5000).startswith("sent")
    assert fn("acct-9", 700).startswith("sent")
    decisions = _decisions(transfers)
    assert [(d["effect"], d["shadow"]) for d in decisions] == [("deny", True), ("pending", True)]
    assert ran == [("acct-9", 5000), ("acct-9", 700)]
    assert transfers.approvals.list() == []


def test_redacted_arguments_are_masked_but_digested(transfers):
    transfers.set_policy("default: allow\nredact: [password, card.number]\nrules: []")
    login = transfers.guard("login")(lambda user, password, card: "ok")
    login("ann", "hunter2", {"number": "4111", "exp": "12/29"})
    other = transfers.guard("login")(lambda user, password, card: "ok")
    other("ann", "hunter3", {"number": "4111", "exp": "12/29"})
    first, second = _decisions(transfers)
    assert first["args"] == {"user": "ann", "password": "[REDACTED]", "card": {"number": "[REDACTED]", "exp": "12/29"}}
    assert first["args"] == second["args"] and first["args_digest"] != second["args_digest"]


# -- the module-level decorator: the process's default Hashed, looked up at each call (issue #13) -------------


def test_hashed_guard_decorates_with_the_default_instance(hashed_offline):
    import hashed

    @hashed.guard("transfer_money")  # decorated before any default exists: nothing is opened here
    def transfer_money(to: str, amount: float) -> str:
        return f"sent {amount}"

    @hashed.guard
    def ping() -> str:
        return "pong"

    hashed_offline.set_policy(
        "rules: [{id: t, tools: [transfer_money], effect: allow, limits: {amount: {max: 100}}},"
        " {id: p, tools: [ping], effect: allow}]"
    )
    hashed_offline.instrument()  # makes it the process's default
    assert transfer_money("acct-9", 50) == "sent 50"
    assert transfer_money("acct-9", 500).decision.effect == "deny"
    assert ping() == "pong"
    hashed_offline.flush()
    assert [r.body.get("tool") for r in hashed_offline.ledger.records() if r.kind == "decision"] == [
        "transfer_money",
        "transfer_money",
        "ping",
    ]


def test_execute_binds_a_framework_input_and_denies_what_it_cannot_read(hashed_offline):
    from hashed.adapters import ToolSignature, execute

    hashed_offline.set_policy("rules: [{id: q, tools: [run_query], effect: deny, when: {database: {eq: prod}}}]")
    ran = []

    def run_query(sql: str, database: str = "prod") -> str:
        ran.append((sql, database))
        return "rows"

    signature = ToolSignature.of(run_query)
    refused = execute(hashed_offline, "run_query", lambda: run_query("x"), signature=signature, input={"sql": "x"})
    assert refused.decision.reason == "rule q forbids run_query"
    unreadable = execute(hashed_offline, "run_query", lambda: "ran", signature=signature, input={"nope": 1})
    assert unreadable.decision.effect == "deny"
    assert "could not be read as run_query's parameters" in unreadable.decision.reason
    assert ran == []
    hashed_offline.flush()
    [_, second] = hashed_offline.ledger.records()
    assert second.body["args"] == {"unbound_input": {"nope": 1}}


# -- numbers a model may send (issue #14) ---------------------------------------------------------------------

NO_MIN = """
version: 1
default: deny
rules:
  - id: spend
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000, window: {per: 1d, max_sum: 5000}}}
"""


def test_a_negative_amount_never_buys_room_in_a_sum_window(home, hashed_clock):
    with make_hashed(home, policy=NO_MIN, clock=hashed_clock) as hashed:
        ran = []
        fn = _transfer(hashed, ran)
        assert fn("acct-9", -1_000_000).startswith("sent")  # no min in this policy: allowed, counted as zero
        for _ in range(5):
            assert fn("acct-9", 1000).startswith("sent")
        refused = fn("acct-9", 1000)
        assert refused.decision.reason.startswith("window limit reached: amount may sum to 5000 per 1d; 5000 used")
        assert len(ran) == 6


def test_the_starter_policy_refuses_negative_amounts(home, hashed_clock):
    from hashed.cli._starter import STARTER_POLICY

    with make_hashed(home, policy=STARTER_POLICY, clock=hashed_clock) as hashed:
        refused = _transfer(hashed)("acct-9", -5)
        assert refused.decision.reason == "amount=-5 is under the minimum of 0"


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), "nan", "1e400", 10**400])
def test_a_non_finite_amount_is_denied_with_the_reason(transfers, amount):
    ran = []
    refused = _transfer(transfers, ran)("acct-9", amount)
    assert ran == []
    assert "is not a finite number" in refused.decision.reason or "is not a number" in refused.decision.reason


def test_nan_never_slips_past_a_deny_condition_or_an_approval(home, hashed_clock):
    policy = """
version: 1
default: deny
rules:
  - {id: pay, tools: [transfer_money], effect: allow, approval: {when: {amount: {gt: 500}}}}
  - {id: big, tools: [transfer_money], effect: deny, when: {amount: {gt: 100000}}}
"""
    with make_hashed(home, policy=policy, clock=hashed_clock) as hashed:
        ran = []
        refused = _transfer(hashed, ran)("acct-9", float("nan"))
        assert ran == []
        assert refused.decision.effect is Effect.DENY
        assert "not a finite number" in refused.decision.reason


def _send(to: str) -> str:
    import hashed  # the forked worker's copy of the parent's default `Hashed`

    return hashed.current().guard("send_email")(lambda to: "sent")(to)


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
@pytest.mark.parametrize("how", ["Pool (ended by terminate)", "Process (ends on its own)"])
def test_every_record_of_a_forked_multiprocessing_worker_is_in_the_ledger_once_the_parent_closes(home, durability, how):
    import multiprocessing

    import hashed

    fork = multiprocessing.get_context("fork")
    parent = make_hashed(home, durability=durability)
    hashed._core._default = parent  # what `hashed.current()` gives in the parent, and in its forked workers
    try:
        if how.startswith("Pool"):
            with fork.Pool(2) as pool:  # leaving the block terminates the workers (SIGTERM)
                assert pool.map(_send, [f"u{i}@example.com" for i in range(300)]) == ["sent"] * 300
        else:
            workers = [fork.Process(target=_send, args=(f"u{i}@example.com",)) for i in range(3)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=60)
                assert worker.exitcode == 0
    finally:
        hashed._core._default = None
        parent.close()
    with sqlite3.connect(home / "ledger.db") as db:  # committed by the parent's close: no later start needed
        outcomes = db.execute("SELECT count(*) FROM records WHERE kind = 'outcome'").fetchone()[0]
    assert outcomes == (300 if how.startswith("Pool") else 3)
    with make_hashed(home, durability=durability) as reader:
        assert reader.verify().ok and len([r for r in reader.ledger.records() if r.kind == "outcome"]) == outcomes


def test_record_given_a_result_instead_of_an_outcome_says_what_it_takes(tmp_path):
    from hashed import ToolCall
    from hashed.adapters import outcome, started

    with make_hashed(tmp_path, policy=TRANSFER_POLICY) as hashed:
        call = ToolCall("transfer_money", {"to": "acct-9", "amount": 5})
        decision = hashed.check(call)
        with pytest.raises(TypeError, match=r"takes the call's Outcome, not str: .*hashed\.adapters\.outcome"):
            hashed.record(decision, "sent")  # type: ignore[arg-type]
        hashed.record(decision, outcome(started(), result="sent"))  # the right way still records it
        hashed.flush()
        kinds = [record.kind for record in hashed.ledger.records()]
    assert kinds.count("outcome") == 1


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_a_tool_that_raises_or_returns_text_json_cannot_carry_still_gets_its_outcome_recorded(tmp_path, durability):
    # What a tool raises or returns is any object: before, a lone surrogate in an error message or a returned
    # string (or an exception whose message cannot be made) raised a TypeError from the ledger after the tool
    # had run, in place of the tool's own error, and its outcome was never recorded.
    with make_hashed(tmp_path / ".hashed", durability=durability) as hashed:
        fail = hashed.guard("fail")(lambda error: (_ for _ in ()).throw(error))
        echo = hashed.guard("echo")(lambda value: value)
        with pytest.raises(ValueError, match="lone"):
            fail(ValueError("lone \udc80 surrogate"))
        with pytest.raises(_Unprintable):
            fail(_Unprintable())
        assert echo("\ud800 alone") == "\ud800 alone"
        assert hashed.flush(timeout=10)
        outcomes = [r.body for r in hashed.ledger.records() if r.kind == "outcome"]
        assert [o["status"] for o in outcomes] == ["error", "error", "ok"]
        assert outcomes[0]["error"] == "ValueError: lone \\udc80 surrogate"  # escaped, as arguments are
        assert outcomes[1]["error"] == "_Unprintable: <_Unprintable object: its str() failed>"
        assert outcomes[2]["result_digest"] and hashed.verify().ok


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _OddRepr:
    def __repr__(self) -> str:
        return "odd \udc80 repr"


class _NoItems(dict):
    def items(self):  # type: ignore[override]
        raise RuntimeError("no items")


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_whatever_a_tool_returns_comes_back_and_its_outcome_is_recorded(tmp_path, durability):
    # The tool has run: nothing it returns may turn into an error from the guard (the caller could run it again).
    with make_hashed(tmp_path / ".hashed", durability=durability) as hashed:
        results = [_NoRepr(), _OddRepr(), _NoItems(a=1), {_NoRepr(): 1}]
        make = hashed.guard("make")(lambda index: results[index])
        assert all(make(index) is result for index, result in enumerate(results))
        assert hashed.flush(timeout=10)
        outcomes = [r.body for r in hashed.ledger.records() if r.kind == "outcome"]
        assert [o["status"] for o in outcomes] == ["ok"] * 4 and all(o["result_digest"] for o in outcomes)
        assert hashed.verify().ok


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_an_amount_whose_repr_or_items_fail_is_refused_and_the_refusal_recorded(tmp_path, durability):
    # Before, both raised the object's own error out of the guard: the tool did not run, but no decision was
    # recorded, and the caller got a RuntimeError instead of the refusal.
    rule = "{id: small, tools: [pay], effect: allow, limits: {amount: {max: 9}}}"
    policy = f"version: 1\ndefault: deny\nrules:\n  - {rule}\n"
    ran = []
    with make_hashed(tmp_path / ".hashed", policy=policy, durability=durability) as hashed:
        pay = hashed.guard("pay")(lambda to, amount: ran.append(amount))
        assert isinstance(pay("acct", _NoRepr()), Refusal)
        assert isinstance(pay("acct", _NoItems(cents=900)), Refusal)
        assert hashed.flush(timeout=10)
        decisions = [r.body for r in hashed.ledger.records() if r.kind == "decision"]
        assert hashed.verify().ok
    assert ran == []
    assert [d["effect"] for d in decisions] == ["deny", "deny"]
    assert decisions[0]["reason"] == "amount=<_NoRepr object: its repr() failed> is not a number"
    assert decisions[0]["args"] == {"to": "acct", "amount": "<_NoRepr object: its repr() failed>"}
    assert decisions[1]["args"] == {"unrecorded": "the arguments could not be recorded"}
