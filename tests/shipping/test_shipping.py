"""A guarded agent reporting to a real backend: shipping, outages, restarts, central policy, approvals."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hashed import Effect, Hashed, LedgerRecord, Refusal
from hashed.ledger import read_export, read_ledger, verify_records
from hashed.plugins import hookimpl
from hashed.shipping import verify_approval
from hashed_backend.testing import LocalBackend, Organisation

from .conftest import POLICY, backend_chain, wait_for

pytestmark = pytest.mark.e2e


def _pay(hashed):
    return hashed.guard("transfer_money")(lambda to, amount: "sent")


def _shipped(hashed) -> bool:
    return hashed.shipper.unshipped() == 0


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_every_record_reaches_the_backend_and_verifies_there(agent_factory, org, tmp_path, durability):
    name = f"ledger-agent-{durability}"  # the organisation is shared by the module's tests: one agent name each
    agent = agent_factory(name, durability=durability)
    assert agent.policy_source.startswith("backend")
    pay = _pay(agent)
    assert pay("acct-9", 50) == "sent"
    assert isinstance(pay("acct-9", 5000), Refusal)
    agent.flush()
    wait_for(lambda: _shipped(agent), what="shipping")
    head_seq, head_hash = agent.ledger.head()
    chain = backend_chain(org, name)
    assert (chain["verified_seq"], chain["head"]["hash"], chain["quarantined"]) == (head_seq, head_hash, 0)
    assert chain["reverified"] is True and chain["error"] is None
    agent_id = next(a["id"] for a in org.call("GET", "/v1/agents") if a["name"] == name)
    export = tmp_path / "export.jsonl"
    import httpx

    response = httpx.get(
        f"{org.url}/v1/logs/export",
        params={"agent": agent_id},
        headers={"Authorization": f"Bearer {org.admin_key}"},
        timeout=30,
    )
    export.write_bytes(response.content)
    report = verify_records(read_export(export), key=agent.public_key)
    assert report.ok and report.count == head_seq


def test_backend_down_for_a_while_loses_and_duplicates_nothing(agent_factory, tmp_path):
    with LocalBackend(tmp_path / "backend") as backend:
        org = backend.bootstrap()
        org.put_policy(POLICY)
        agent = agent_factory("outage-agent", organisation=org)
        pay = _pay(agent)
        pay("acct-9", 1)
        wait_for(lambda: _shipped(agent), what="first shipment")
        backend.stop()
        started = time.perf_counter()
        for i in range(50):  # the backend is down: calls are decided locally, never waiting on the network
            assert pay("acct-9", i % 90) == "sent"
        assert time.perf_counter() - started < 5
        assert agent.shipper.unshipped() > 0
        time.sleep(0.5)  # let the shipper fail a few times and back off
        assert agent.shipper.last_error is not None and "cannot reach the backend" in agent.shipper.last_error
        backend.start()
        wait_for(lambda: _shipped(agent), timeout=30, what="catching up after the outage")
        chain = backend_chain(org, "outage-agent")
        head_seq, head_hash = agent.ledger.head()
        assert (chain["records"], chain["verified_seq"], chain["head"]["hash"]) == (head_seq, head_seq, head_hash)
        assert chain["gaps"] == [] and chain["quarantined"] == 0


def test_backend_restarted_while_calls_run(agent_factory, tmp_path):
    with LocalBackend(tmp_path / "backend") as backend:
        org = backend.bootstrap()
        org.put_policy(POLICY)
        agent = agent_factory("restart-agent", organisation=org)
        pay = _pay(agent)
        stop = threading.Event()
        made = []

        def busy() -> None:
            while not stop.is_set():
                made.append(pay("acct-9", 5))
                time.sleep(0.002)

        worker = threading.Thread(target=busy)
        worker.start()
        time.sleep(0.5)
        backend.restart()
        time.sleep(0.5)
        stop.set()
        worker.join()
        assert set(made) == {"sent"}
        agent.flush()
        wait_for(lambda: _shipped(agent), timeout=30, what="shipping after the restart")
        chain = backend_chain(org, "restart-agent")
        assert chain["records"] == chain["verified_seq"] == agent.ledger.head()[0] == 2 * len(made)
        assert chain["quarantined"] == 0


def test_unshipped_records_go_out_after_the_agent_restarts(agent_factory, tmp_path):
    with LocalBackend(tmp_path / "backend") as backend:
        org = backend.bootstrap()
        org.put_policy(POLICY)
        key = org.create_key("agent", "resend-agent")
        home = tmp_path / "resend-agent"
        first = agent_factory("resend-agent", organisation=org, api_key=key, home=home)
        wait_for(lambda: first.shipper.registered, what="registration")
        backend.stop()
        for _ in range(5):
            _pay(first)("acct-9", 5)
        started = time.perf_counter()
        first.close()  # never hangs on a dead backend: flush_timeout bounds it
        assert time.perf_counter() - started < 8
        backend.start()
        second = agent_factory("resend-agent", organisation=org, api_key=key, home=home)
        assert second.policy_source.startswith("backend (cached")  # restarted into the last good policy
        wait_for(lambda: _shipped(second), timeout=30, what="resending after restart")
        assert backend_chain(org, "resend-agent")["verified_seq"] == 10


def test_a_central_policy_change_is_picked_up(agent_factory, org):
    agent = agent_factory("policy-agent")
    pay = _pay(agent)
    assert isinstance(pay("acct-9", 500), Refusal)
    agent_id = next(a["id"] for a in org.call("GET", "/v1/agents") if a["name"] == "policy-agent")
    raised = POLICY.replace("max: 100", "max: 1000")
    version = org.put_policy(raised, scope=agent_id)
    wait_for(lambda: agent.policy_hash == version["hash"], what="the new policy")
    assert pay("acct-9", 500) == "sent"
    agent.flush()
    decision = [r for r in agent.ledger.records() if r.kind == "decision"][-1]
    assert (decision.body["effect"], decision.body["policy"]) == ("allow", version["hash"])


def test_an_approval_granted_through_the_admin_api_lets_the_call_run(agent_factory, org):
    agent = agent_factory("approval-agent", approval_wait=20, approval_poll=0.05)
    big = agent.guard("big_transfer")(lambda to, amount: "moved")
    answer: dict[str, object] = {}

    def call() -> None:
        answer["result"] = big("acct-1", 9000)

    caller = threading.Thread(target=call)
    caller.start()

    def pending_at_backend() -> list[dict[str, object]]:
        page = org.call("GET", "/v1/approvals", status="pending")
        return [a for a in page["items"] if a["tool"] == "big_transfer"]

    wait_for(lambda: bool(pending_at_backend()), what="the approval request at the backend")
    request = pending_at_backend()[0]
    assert request["args"] == {"to": "acct-1", "amount": 9000}
    org.call("POST", f"/v1/approvals/{request['id']}/approve", {"comment": "ok by finance"})
    caller.join(25)
    assert answer["result"] == "moved"
    agent.flush()
    approval = next(r for r in agent.ledger.records() if r.kind == "approval")
    signed = approval.body["signed_answer"]
    assert approval.body["verdict"] == "approved" and signed["answer"]["comment"] == "ok by finance"
    assert verify_approval(agent.shipper.backend_key, signed["answer"], signed["signature"])
    assert agent.verify().ok


def test_a_refused_record_is_kept_locally_with_the_backends_reason(agent_factory, tmp_path):
    with LocalBackend(tmp_path / "backend") as backend:
        org = backend.bootstrap()
        org.put_policy(POLICY)
        agent = agent_factory("tamper-agent", organisation=org)
        wait_for(lambda: agent.shipper.registered, what="registration")
        backend.stop()
        pay = _pay(agent)
        pay("acct-9", 1)
        pay("acct-9", 2)
        agent.flush()
        with agent.ledger.db.lock:  # someone edits an unshipped record on disk
            body = agent.ledger.db.conn.execute("SELECT body FROM records WHERE seq = 3").fetchone()[0]
            agent.ledger.db.conn.execute(
                "UPDATE records SET body = ? WHERE seq = 3", (body.replace(b'"amount":2', b'"amount":3'),)
            )
        backend.start()
        wait_for(lambda: _shipped(agent), timeout=30, what="shipping")
        with agent.ledger.db.lock:
            refusals = agent.ledger.db.conn.execute("SELECT seq, code, reason FROM refusals").fetchall()
        assert refusals[0][:2] == (3, "hash_mismatch")
        assert "altered" in refusals[0][2]
        # What follows the altered record cannot continue the backend's chain either: refused, kept, not lost.
        assert [seq for seq, _, _ in refusals] == [3, 4]
        quarantine = org.call("GET", "/v1/logs/quarantine")
        assert (3, "hash_mismatch") in {(q["seq"], q["code"]) for q in quarantine["items"]}
        assert backend_chain(org, "tamper-agent")["verified_seq"] == 2


@pytest.mark.parametrize("fail_closed", [True, False])
def test_with_no_policy_known_at_all_fail_closed_decides(agent_factory, tmp_path, fail_closed):
    agent = agent_factory("orphan", url="http://127.0.0.1:9", api_key="hashed_agent_nowhere", fail_closed=fail_closed)
    assert agent.policy_source == "none (fail_closed)"
    result = _pay(agent)("acct-9", 5)
    if fail_closed:
        assert isinstance(result, Refusal)
        assert result.decision.effect is Effect.DENY and "no policy is known yet" in result
    else:
        assert result == "sent"
    agent.flush()
    decision = next(r for r in agent.ledger.records() if r.kind == "decision")
    assert json.loads(json.dumps(decision.body))["reason"].startswith("no policy is known yet")


_EXITING_AGENT = """
import sys
from pathlib import Path
from hashed import Hashed, Identity
from hashed.config import HashedSettings
home, url, key = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
home.mkdir(parents=True, exist_ok=True)
settings = HashedSettings(home=home, agent="exiting-agent", backend_url=url, api_key=key, ship_interval=60,
                          disable_plugin_autoload=True)
hashed = Hashed(settings=settings, identity=Identity.from_seed(bytes([9]) * 32))
pay = hashed.guard("transfer_money")(lambda to, amount: "sent")
for i in range(20):
    pay("acct-9", 5)
# no close(): the interpreter's exit flushes and ships (ship_interval is a minute, so only that can)
"""


def test_interpreter_exit_ships_what_is_left(org, tmp_path):
    import subprocess
    import sys

    key = org.create_key("agent", "exiting-agent")
    result = subprocess.run(
        [sys.executable, "-c", _EXITING_AGENT, str(tmp_path / "home"), org.url, key],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    chain = backend_chain(org, "exiting-agent")
    assert chain["verified_seq"] == chain["records"] == 40


_FORKING_AGENT = textwrap.dedent(
    """
    import hashlib, os, sys
    from pathlib import Path
    from hashed import Hashed, HashedSettings, Identity
    home, url, key, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    settings = HashedSettings(
        home=home, agent=name, backend_url=url, api_key=key, ship_interval=0.05, disable_plugin_autoload=True
    )
    hashed = Hashed(settings=settings, identity=Identity.from_seed(hashlib.sha256(name.encode()).digest()))
    pay = hashed.guard("transfer_money")(lambda to, amount: "sent")
    assert pay("acct-9", 1) == "sent"
    hashed.flush()
    workers = []
    for worker in range(2):  # two forked workers use the Hashed their parent made, then leave normally
        pid = os.fork()
        if pid == 0:
            assert all(pay("acct-9", 10 + worker) == "sent" for _ in range(5))
            sys.exit(0)
        workers.append(pid)
    for pid in workers:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert pay("acct-9", 2) == "sent"
    hashed.close()
    """
)


def test_forked_workers_records_all_reach_the_backend_on_one_chain(org, tmp_path):
    name = "forking-agent"
    home = tmp_path / name
    home.mkdir()
    key = str(org.create_key("agent", name))
    proc = subprocess.run(
        [sys.executable, "-c", _FORKING_AGENT, str(home), org.url, key, name],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    records = list(read_ledger(home / "ledger.db"))
    assert len(records) == 2 * (1 + 2 * 5 + 1)  # decision + outcome of every call, parent's and workers'
    assert verify_records(records).ok
    chain = backend_chain(org, name)  # shipped before the processes exited: nothing waits for a next start
    assert (chain["records"], chain["verified_seq"]) == (len(records), len(records))
    assert chain["head"]["hash"] == records[-1]["hash"] and chain["gaps"] == [] and chain["quarantined"] == 0


def approving_agent(agent_factory, name: str, home, key: str, **overrides: object) -> Hashed:
    """An agent whose pending calls return at once, once the backend's policy is in force.

    Its requests may take long on a loaded machine (the tests here are about approvals, not timeouts), and the
    first policy fetch at start gives up after 2 s (the agent then denies until the policy arrives).
    """
    agent = agent_factory(name, home=home, api_key=key, approval_wait=0, request_timeout=30.0, **overrides)
    wait_for(lambda: agent.policy_source.startswith("backend"), what="the backend's policy")
    return agent


def test_a_short_lived_agents_pending_call_reaches_the_backend_under_one_id_and_the_next_run_proceeds(
    agent_factory, org, tmp_path
):
    home = tmp_path / "short-lived"
    key = org.create_key("agent", "short-lived")
    first = approving_agent(agent_factory, "short-lived", home, key)
    refused = first.guard("big_transfer")(lambda to, amount: "moved")("acct-1", 9000)
    assert isinstance(refused, Refusal) and refused.decision.effect is Effect.PENDING
    first.close(timeout=10)  # exits right away: the request is handed on before close() returns
    local_id = refused.decision.approval_id
    request = org.call("GET", f"/v1/approvals/{local_id}")  # the same id at the backend
    assert (request["status"], request["tool"], request["args"]) == (
        "pending",
        "big_transfer",
        {"to": "acct-1", "amount": 9000},
    )
    org.call("POST", f"/v1/approvals/{local_id}/approve", {"comment": "ok by finance"})
    second = approving_agent(agent_factory, "short-lived", home, key)
    result = second.guard("big_transfer")(lambda to, amount: "moved")("acct-1", 9000)
    assert result == "moved", (result, second.shipper.last_error, second.approvals.get(local_id))  # at once


class _AnswerBackBeforeAsking:
    """A sink that plays the shipping thread at the worst moment for a pending call (the race fixed in 0ece374).

    When the call's pending decision is committed, and before `check` asks the backend about it, one round of
    shipping hands the request on, a person approves it at the backend, and the next round brings the signed answer
    into the local store: `ask_now` then finds nothing left to ask.
    """

    def __init__(self, agent: Hashed, org: Organisation) -> None:
        self._agent = agent
        self._org = org
        self.answered: list[str] = []

    @hookimpl
    def hashed_record_written(self, record: LedgerRecord) -> None:
        if record.kind != "decision" or record.body["effect"] != "pending" or self.answered:
            return
        approval_id = record.body["approval"]
        shipper = self._agent.shipper
        assert shipper is not None
        shipper.step()  # registered already; ships what is signed, and hands the request on
        self._org.call("POST", f"/v1/approvals/{approval_id}/approve", {"comment": "approved meanwhile"})
        shipper.step()  # brings the signed answer back
        assert self._agent.approvals.get(approval_id).status == "approved"
        self.answered.append(approval_id)


@pytest.mark.parametrize("entry", ["check", "acheck"])
def test_a_pending_call_proceeds_when_its_answer_came_back_before_it_asked_the_backend(
    agent_factory, org, tmp_path, entry
):
    name = f"answered-meanwhile-{entry}"  # one key per agent name: the organisation is shared
    # A shipping thread that sleeps after its first round: only the sink ships, when the decision is committed.
    agent = approving_agent(agent_factory, name, tmp_path / name, org.create_key("agent", name), ship_interval=60)
    shipper = agent.shipper
    assert shipper is not None
    wait_for(lambda: shipper.last_contact is not None, what="the shipping thread's first round")
    sink = _AnswerBackBeforeAsking(agent, org)
    agent.register_plugin(sink)
    runs: list[int] = []

    def moved(to: str, amount: int) -> str:
        runs.append(amount)
        return "moved"

    async def moved_async(to: str, amount: int) -> str:
        return moved(to, amount)

    if entry == "check":
        result = agent.guard("big_transfer")(moved)("acct-1", 9000)
    else:
        result = asyncio.run(agent.guard("big_transfer")(moved_async)("acct-1", 9000))
    assert sink.answered, "the sink never saw the pending decision"
    assert (result, runs) == ("moved", [9000])
    agent.flush()
    records = list(agent.ledger.records())
    assert [r.body["effect"] for r in records if r.kind == "decision"] == ["pending", "allow"]
    [approval] = [r for r in records if r.kind == "approval"]
    assert (approval.body["approval"], approval.body["verdict"]) == (sink.answered[0], "approved")
