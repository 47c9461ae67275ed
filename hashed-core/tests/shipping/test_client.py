"""The backend client against recorded conversations with the real backend (see conftest.py)."""

from __future__ import annotations

import socket

import pytest

from hashed import BackendError, BackendUnavailable, Identity
from hashed.ledger import verify_records
from hashed.shipping import BackendClient, verify_approval
from hashed.testing import FIXED_SEED, make_hashed

POLICY = (
    "version: 1\ndefault: deny\nrules:\n"
    "  - {id: pay, tools: [transfer_money], effect: allow, limits: {amount: {max: 100}}}\n"
)


def _records(tmp_path, n: int):
    with make_hashed(tmp_path / ".hashed", policy=POLICY) as hashed:
        pay = hashed.guard("transfer_money")(lambda to, amount: "sent")
        for i in range(n):
            pay("acct-9", 10 + i)
        hashed.flush()
        return [r.to_json() for r in hashed.ledger.records()]


def test_register_policy_and_ship(recorded, tmp_path):
    identity = Identity.from_seed(FIXED_SEED)
    key = recorded.agent_key("billing-bot")
    recorded.admin("PUT", "/v1/policies/org", {"yaml": POLICY, "allow_removals": True})
    with BackendClient(recorded.url, key, lambda: identity) as client:
        _register_policy_and_ship(client, identity, tmp_path)


def _register_policy_and_ship(client, identity, tmp_path):
    agent = client.register("billing-bot")
    assert (agent["name"], agent["public_key"]) == ("billing-bot", identity.public_key)
    assert len(client.backend_key()) == 64

    policy = client.policy(None)
    assert policy is not None
    assert policy.yaml == POLICY and policy.source == "org" and policy.version >= 1
    assert client.policy(policy.etag) is None  # 304: unchanged

    records = _records(tmp_path, 3)
    assert verify_records(records).ok
    first = client.send(records)
    assert [r["status"] for r in first["results"]] == ["stored"] * 6
    assert first["head"]["seq"] == 6
    again = client.send(records)  # the shipper may resend after a crash: acknowledged, not stored twice
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 6


def test_approvals_come_back_signed_by_the_backend(recorded):
    identity = Identity.from_seed(bytes([2]) * 32)
    key = recorded.agent_key("payments")
    with BackendClient(recorded.url, key, lambda: identity) as client:
        _approvals(client, identity, recorded)


def _approvals(client, identity, recorded):
    client.register("payments")
    backend_key = client.backend_key()
    asked = client.create_approval(
        {
            "call": "11" * 16,
            "tool": "transfer_money",
            "args": {"amount": 700},
            "args_digest": "ab" * 32,
            "rule": "big",
            "reason": "over 500",
            "timeout": 600,
        }
    )
    assert asked["status"] == "pending"
    assert client.approval(asked["id"])["status"] == "pending"
    recorded.admin("POST", f"/v1/approvals/{asked['id']}/approve", {"comment": "known payee"})
    answered = client.approval(asked["id"])
    assert answered["status"] == "approved"
    assert answered["answer"]["comment"] == "known payee" and answered["answer"]["agent_key"] == identity.public_key
    assert verify_approval(backend_key, answered["answer"], answered["signature"])
    forged = dict(answered["answer"], status="denied")
    assert not verify_approval(backend_key, forged, answered["signature"])


def test_refusals_carry_the_backends_code(recorded):
    identity = Identity.from_seed(bytes([3]) * 32)
    key = recorded.agent_key("temp")
    with BackendClient(recorded.url, key, lambda: identity) as client:
        _refusals(client, recorded)


def _refusals(client, recorded):
    with pytest.raises(BackendError) as unknown:
        client.policy(None)  # signed correctly, but no agent holds this key yet
    assert (unknown.value.status, unknown.value.code) == (401, "agent_unknown")
    keys = recorded.admin("GET", "/v1/keys")
    key_id = next(k["id"] for k in keys if k["name"] == "temp")
    recorded.admin("POST", f"/v1/keys/{key_id}/revoke")
    with pytest.raises(BackendError) as revoked:
        client.register("temp")
    assert (revoked.value.status, revoked.value.code) == (401, "key_revoked")
    assert not isinstance(revoked.value, BackendUnavailable)  # retrying will not help


def test_rate_limits_say_when_to_come_back(recorded):
    identity = Identity.from_seed(bytes([4]) * 32)
    key = recorded.agent_key("chatty")
    with BackendClient(recorded.url, key, lambda: identity) as client, pytest.raises(BackendUnavailable) as limited:
        _hammer(client)
    assert limited.value.status == 429 and limited.value.code == "rate_limited"
    assert limited.value.retry_after is not None and limited.value.retry_after > 0


def _hammer(client: BackendClient) -> None:
    for _ in range(300):  # the recording backend allows a burst of 60 requests per key
        try:
            client.policy(None)
        except BackendUnavailable:
            raise
        except BackendError:  # agent_unknown: this key never registered; only the rate matters here
            continue


def test_an_unreachable_backend_is_unavailable_not_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with (
            BackendClient(
                f"http://127.0.0.1:{port}", "hashed_agent_x", lambda: Identity.from_seed(FIXED_SEED), timeout=2
            ) as client,
            pytest.raises(BackendUnavailable, match="cannot reach the backend"),
        ):
            client.policy(None)
