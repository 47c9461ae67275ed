"""Signed agent requests: what is signed, stale timestamps, replayed nonces, tampering."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from hashed import Identity
from hashed.shipping import canonical_request, signed_headers


def test_canonical_request_is_exactly_the_documented_bytes():
    body = b'{"records":[]}'
    expected = (
        b"hashed.request.v1\n"
        b"POST\n"
        b"/v1/approvals/apr_1?wait=30&x=%20y\n"
        b"1700000000\n"
        b"0123456789abcdef\n" + hashlib.sha256(body).hexdigest().encode()
    )
    assert canonical_request("post", "/v1/approvals/apr_1?wait=30&x=%20y", "1700000000", "0123456789abcdef", body) == (
        expected
    )
    empty = canonical_request("GET", "/v1/policy", "1", "n" * 16, b"")
    assert empty.endswith(b"\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def send(org, identity, method, path, *, body=b"", headers=None, api_key=None, **overrides):
    signed = signed_headers(
        identity, method, overrides.pop("signed_path", path), overrides.pop("signed_body", body), **overrides
    )
    all_headers = {
        "Authorization": f"Bearer {api_key or org.agent_key}",
        "Content-Type": "application/json",
        **signed,
        **(headers or {}),
    }
    with httpx.Client(base_url=org.server.url, timeout=30) as client:
        return client.request(method, path, content=body, headers=all_headers)


def code(response):
    return response.json()["error"]["code"]


@pytest.fixture
def agent(org, make_agent):
    return make_agent(org)


def test_signed_request_is_accepted(org, agent):
    response = send(org, agent.ledger.identity, "POST", "/v1/logs/batch", body=b'{"records": []}')
    assert response.status_code == 200, response.text


def test_signed_request_with_query_string_is_accepted(org, agent):
    response = send(org, agent.ledger.identity, "GET", "/v1/approvals?status=pending&limit=5")
    assert response.status_code == 200, response.text


def test_stale_timestamp_is_refused(org, agent):
    # The server allows 300 s of clock skew. Stay 5 s clear of the edge on both sides: the test's clock and the
    # server's read a second apart would otherwise turn 301 s into 300 s (this raced once in CI).
    for skew in (-305, 305):
        response = send(org, agent.ledger.identity, "GET", "/v1/approvals", timestamp=int(time.time()) + skew)
        assert response.status_code == 401 and code(response) == "signature_stale"
    for skew in (-295, 295):
        response = send(org, agent.ledger.identity, "GET", "/v1/approvals", timestamp=int(time.time()) + skew)
        assert response.status_code == 200, response.text


def test_replayed_nonce_is_refused(org, agent):
    nonce = "replay-me-0123456789"
    first = send(org, agent.ledger.identity, "GET", "/v1/approvals", nonce=nonce)
    assert first.status_code == 200
    again = send(org, agent.ledger.identity, "GET", "/v1/approvals", nonce=nonce)
    assert again.status_code == 401 and code(again) == "nonce_reused"


def test_exact_replay_of_a_batch_is_refused_and_changes_nothing(org, agent):
    agent.ledger.activity(2)
    body = httpx.Request("POST", "/", json={"records": agent.ledger.records()}).content
    headers = signed_headers(agent.ledger.identity, "POST", "/v1/logs/batch", body)
    auth = {"Authorization": f"Bearer {org.agent_key}", "Content-Type": "application/json", **headers}
    with httpx.Client(base_url=org.server.url) as client:
        assert client.post("/v1/logs/batch", content=body, headers=auth).status_code == 200
        replay = client.post("/v1/logs/batch", content=body, headers=auth)
    assert replay.status_code == 401 and code(replay) == "nonce_reused"


def test_tampered_body_path_or_method_is_refused(org, agent):
    identity = agent.ledger.identity
    tampered = send(org, identity, "POST", "/v1/logs/batch", body=b'{"records": []}', signed_body=b'{"records":[1]}')
    assert tampered.status_code == 401 and code(tampered) == "signature_invalid"
    moved = send(org, identity, "GET", "/v1/approvals?status=denied", signed_path="/v1/approvals?status=pending")
    assert moved.status_code == 401 and code(moved) == "signature_invalid"


def test_signature_by_another_key_is_refused(org, agent):
    other = Identity.generate()
    headers = signed_headers(other, "GET", "/v1/approvals")
    headers["X-Hashed-Key"] = agent.ledger.identity.public_key
    response = send(org, agent.ledger.identity, "GET", "/v1/approvals", headers=headers)
    assert response.status_code == 401 and code(response) == "signature_invalid"


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Hashed-Key", "zz"), ("X-Hashed-Signature", "00"), ("X-Hashed-Timestamp", "soon"), ("X-Hashed-Nonce", "short")],
)
def test_malformed_signature_headers_are_refused(org, agent, header, value):
    response = send(org, agent.ledger.identity, "GET", "/v1/approvals", headers={header: value})
    assert response.status_code == 401 and code(response) == "signature_invalid"


def test_missing_signature_is_refused(org, agent):
    with httpx.Client(base_url=org.server.url) as client:
        response = client.get("/v1/approvals", headers={"Authorization": f"Bearer {org.agent_key}"})
    assert response.status_code == 401 and code(response) == "signature_missing"


def test_unknown_agent_key_is_refused(org):
    response = send(org, Identity.generate(), "GET", "/v1/policy")
    assert response.status_code == 401 and code(response) == "agent_unknown"


def test_registered_key_of_another_org_is_unknown_here(org, other_org, agent):
    response = send(other_org, agent.ledger.identity, "GET", "/v1/approvals")
    assert response.status_code == 401 and code(response) == "agent_unknown"


def test_disabled_agent_is_refused(org, agent):
    assert org.admin.delete(f"/v1/agents/{agent.id}").json()["disabled_at"] is not None
    response = send(org, agent.ledger.identity, "GET", "/v1/approvals")
    assert response.status_code == 403 and code(response) == "agent_disabled"
