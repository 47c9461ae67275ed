"""Approvals: agents ask and long-poll; people approve or deny; answers are signed by the backend key."""

from __future__ import annotations

import threading
import time

import nacl.signing

from hashed.shipping import approval_message

DIGEST = "ab" * 32


def code(response):
    return response.json()["error"]["code"]


def ask(agent, call="call-1", **extra):
    body = {
        "call": call,
        "tool": "transfer_money",
        "args": {"to": "acct-9", "amount": 700},
        "args_digest": DIGEST,
        "rule": "big-transfers",
        "reason": "amount 700 is over 500",
        **extra,
    }
    return agent.client.post("/v1/approvals", json=body)


def verify(server_key, approval):
    key = nacl.signing.VerifyKey(bytes.fromhex(server_key))
    key.verify(approval_message(approval["answer"]), bytes.fromhex(approval["signature"]))
    return True


def test_request_approve_and_verify_the_signed_answer(org, make_agent):
    agent = make_agent(org)
    created = ask(agent)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending" and request["answer"] is None and request["signature"] is None
    assert request["agent"] == "billing-bot" and request["agent_key"] == agent.ledger.identity.public_key
    approved = org.session.post(f"/v1/approvals/{request['id']}/approve", json={"comment": "ok, once"})
    assert approved.status_code == 200
    answer = approved.json()["answer"]
    assert answer == {
        "id": request["id"],
        "status": "approved",
        "decided_by": org.email,
        "decided_at": answer["decided_at"],
        "comment": "ok, once",
        "args_digest": DIGEST,
        "agent_key": agent.ledger.identity.public_key,
    }
    backend_key = org.admin.get("/v1/backend-key").json()["public_key"]
    seen = agent.client.get(f"/v1/approvals/{request['id']}").json()
    assert seen["status"] == "approved" and verify(backend_key, seen)
    tampered = {**seen, "answer": {**seen["answer"], "status": "denied"}}
    try:
        verify(backend_key, tampered)
        raise AssertionError("a tampered answer verified")
    except nacl.exceptions.BadSignatureError:
        pass


def test_deny_by_admin_key_and_second_decision_is_409(org, make_agent):
    agent = make_agent(org)
    request = ask(agent).json()
    denied = org.admin.post(f"/v1/approvals/{request['id']}/deny", json={"comment": "no"})
    assert denied.json()["status"] == "denied" and denied.json()["decided_by"] == "key:ops"
    again = org.admin.post(f"/v1/approvals/{request['id']}/approve", json={})
    assert again.status_code == 409 and code(again) == "approval_decided"


def test_asking_twice_for_the_same_call_returns_the_first_request(org, make_agent):
    agent = make_agent(org)
    first = ask(agent).json()
    second = ask(agent)
    assert second.status_code == 200 and second.json()["id"] == first["id"]


def test_long_poll_returns_when_a_person_answers(org, make_agent):
    agent = make_agent(org)
    request = ask(agent).json()
    timer = threading.Timer(0.5, lambda: org.admin.post(f"/v1/approvals/{request['id']}/approve", json={}))
    timer.start()
    started = time.monotonic()
    answered = agent.client.get(f"/v1/approvals/{request['id']}", params={"wait": 10})
    elapsed = time.monotonic() - started
    timer.join()
    assert answered.json()["status"] == "approved"
    assert 0.4 < elapsed < 5


def test_long_poll_gives_up_after_wait(org, make_agent):
    agent = make_agent(org)
    request = ask(agent).json()
    started = time.monotonic()
    assert agent.client.get(f"/v1/approvals/{request['id']}", params={"wait": 0.5}).json()["status"] == "pending"
    assert time.monotonic() - started >= 0.5


def test_unanswered_request_expires_with_a_signed_answer(org, make_agent):
    agent = make_agent(org)
    request = ask(agent, timeout=0.5).json()
    expired = agent.client.get(f"/v1/approvals/{request['id']}", params={"wait": 5}).json()
    assert expired["status"] == "expired" and expired["answer"]["decided_by"] == "backend"
    assert verify(org.admin.get("/v1/backend-key").json()["public_key"], expired)
    late = org.admin.post(f"/v1/approvals/{request['id']}/approve", json={})
    assert late.status_code == 409 and code(late) == "approval_decided"


def test_listing_filters_by_status_and_agents_see_their_own(org, make_agent):
    alice, bob = make_agent(org, "alice"), make_agent(org, "bob")
    a = ask(alice, "a1").json()
    ask(alice, "a2")
    ask(bob, "b1")
    org.admin.post(f"/v1/approvals/{a['id']}/approve", json={})
    assert len(org.admin.get("/v1/approvals").json()["items"]) == 3
    assert [x["call"] for x in org.admin.get("/v1/approvals", params={"status": "pending"}).json()["items"]] == [
        "b1",
        "a2",
    ]
    assert {x["call"] for x in alice.client.get("/v1/approvals").json()["items"]} == {"a1", "a2"}
    assert code(bob.client.get(f"/v1/approvals/{a['id']}")) == "approval_not_found"
    page = org.admin.get("/v1/approvals", params={"limit": 2}).json()
    rest = org.admin.get("/v1/approvals", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None


def test_agents_cannot_decide(org, make_agent):
    agent = make_agent(org)
    request = ask(agent).json()
    assert code(agent.client.post(f"/v1/approvals/{request['id']}/approve", json={})) == "forbidden"
    assert agent.client.get(f"/v1/approvals/{request['id']}").json()["status"] == "pending"


def test_backend_key_is_public_and_stable(server, org):
    first = org.admin.get("/v1/backend-key").json()
    assert first["algorithm"] == "Ed25519" and len(first["public_key"]) == 64
    assert first["approval_context"] == "hashed.approval.v1"
