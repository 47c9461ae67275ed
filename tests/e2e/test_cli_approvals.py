"""`hashed approvals list | approve | deny` against the backend, and locally where the agent's ledger is."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest

from hashed import Hashed, Identity
from hashed.shipping import verify_approval

pytestmark = pytest.mark.e2e

APPROVAL_POLICY = """\
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    approval: {when: {amount: {gt: 500}}, timeout: 15m, on_timeout: deny}
"""


def _ask(agent, tool="transfer_money", amount=700):
    args = {"to": "acct-9", "amount": amount}
    return agent.client.create_approval(
        {
            "call": uuid.uuid4().hex,
            "tool": tool,
            "args": args,
            "args_digest": hashlib.sha256(json.dumps(args).encode()).hexdigest(),
            "rule": "transfers",
            "reason": "amount over 500 needs a person",
            "timeout": 900,
        }
    )


def test_remote_list_approve_deny_with_no_local_ledger(logged_in, make_agent, org):
    cli = logged_in
    agent = make_agent("billing-bot")
    agent.register()
    first, second = _ask(agent, amount=700), _ask(agent, amount=900)

    listed = json.loads(cli("approvals", "list", "--json").output)  # no .hashed here: the backend's requests
    assert {r["id"] for r in listed} == {first["id"], second["id"]}
    table = cli("approvals", "list").output
    assert first["id"] in table and "billing-bot" in table and "pending" in table

    result = cli("approvals", "approve", first["id"], "-m", "looks fine")
    assert f"approved {first['id']}" in result.output and "as key:ops" in result.output
    answered = agent.client.approval(first["id"])
    assert answered["status"] == "approved" and answered["comment"] == "looks fine"
    assert verify_approval(agent.client.backend_key(), answered["answer"], answered["signature"])

    denied = json.loads(cli("approvals", "deny", second["id"], "--json").output)
    assert denied["status"] == "denied" and denied["decided_by"] == "key:ops"
    assert json.loads(cli("approvals", "list", "--json").output) == []
    every = json.loads(cli("approvals", "list", "--status", "all", "--json").output)
    assert {r["status"] for r in every} == {"approved", "denied"}

    result = cli("approvals", "approve", second["id"], code=1)
    assert "approval_decided" in result.output
    result = cli("approvals", "deny", "apr_nothing", code=1)
    assert "approval_not_found" in result.output and "hashed approvals list" in result.output


def test_a_local_ledger_is_used_unless_remote_is_asked_for(logged_in, make_agent, monkeypatch):
    cli = logged_in
    agent = make_agent("billing-bot")
    agent.register()
    asked = _ask(agent)
    cli("init", "--agent", "local-bot")
    with Hashed(policy=APPROVAL_POLICY) as local:
        local.guard("transfer_money")(lambda to, amount: "sent")("acct-1", 800)
    [local_request] = json.loads(cli("approvals", "list", "--json").output)
    assert local_request["agent"] == "local-bot" and local_request["status"] == "pending"
    [remote_request] = json.loads(cli("approvals", "list", "--remote", "--json").output)
    assert remote_request["id"] == asked["id"]
    cli("approvals", "approve", local_request["id"], "--by", "alice")
    assert json.loads(cli("approvals", "list", "--status", "approved", "--json").output)[0]["decided_by"] == "alice"
    result = cli("approvals", "approve", asked["id"], "--remote", "--by", "alice")
    assert "--by is ignored" in result.output and "approved" in result.output


def test_a_pending_call_is_approved_at_the_backend_and_then_runs(logged_in, org, tmp_path):
    """The whole loop: the agent's shipper relays the request, a person approves it with the CLI, the shipper
    brings back the signed answer, and the agent's next identical call runs."""
    cli = logged_in
    home = tmp_path / "agent"
    home.mkdir()
    ran = []
    with Hashed(
        home=home,
        policy=APPROVAL_POLICY,
        agent="billing-bot",
        key_passphrase="p" * 16,
        backend_url=org.url,
        api_key=org.agent_key,
        ship_interval=0.05,
        identity=Identity.generate(),
    ) as hashed:
        pay = hashed.guard("transfer_money")(lambda to, amount: ran.append(amount) or "sent")
        first = pay("acct-9", 700)
        assert ran == [] and "approval" in str(first).lower()
        pending = _wait(lambda: json.loads(cli("approvals", "list", "--remote", "--json").output))
        assert pending[0]["tool"] == "transfer_money" and pending[0]["args"]["amount"] == 700
        cli("approvals", "approve", pending[0]["id"], "--remote", "-m", "ok")
        _wait(lambda: hashed.approvals.list("approved"))
        assert pay("acct-9", 700) == "sent" and ran == [700]


def _wait(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_no_ledger_and_no_login_says_both_ways_out(cli):
    result = cli("approvals", "list", code=3)
    assert "no ledger" in result.output and "hashed login" in result.output
