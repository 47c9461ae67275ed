"""API keys: shown once, stored hashed, expiry, rotation with overlap, revocation, per-key rate limits."""

from __future__ import annotations

import time

import httpx


def code(response):
    return response.json()["error"]["code"]


def bearer(org, key):
    return httpx.Client(base_url=org.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_key_is_shown_once_and_listed_without_secret(org):
    created = org.admin.post("/v1/keys", json={"kind": "admin", "name": "ci"})
    assert created.status_code == 201
    secret = created.json()["key"]
    assert secret.startswith("hashed_admin_") and len(secret) > 50
    listed = org.admin.get("/v1/keys").json()
    assert all("key" not in item for item in listed)
    assert secret not in str(listed)
    mine = next(item for item in listed if item["id"] == created.json()["id"])
    assert mine["status"] == "active" and secret.startswith(mine["prefix"])
    with bearer(org, secret) as client:
        assert client.get("/v1/agents").status_code == 200


def test_unknown_key_is_401_key_invalid(org):
    with bearer(org, "hashed_admin_not-a-real-key") as client:
        response = client.get("/v1/agents")
    assert response.status_code == 401 and code(response) == "key_invalid"


def test_revoked_key_is_401_key_revoked(org):
    created = org.admin.post("/v1/keys", json={"kind": "admin", "name": "temp"}).json()
    revoked = org.admin.post(f"/v1/keys/{created['id']}/revoke")
    assert revoked.json()["status"] == "revoked"
    with bearer(org, created["key"]) as client:
        response = client.get("/v1/agents")
    assert response.status_code == 401 and code(response) == "key_revoked"


def test_expired_key_is_401_key_expired(org):
    created = org.admin.post("/v1/keys", json={"kind": "admin", "name": "short", "expires_in_days": 1 / 86400}).json()
    time.sleep(1.1)
    with bearer(org, created["key"]) as client:
        response = client.get("/v1/agents")
    assert response.status_code == 401 and code(response) == "key_expired"
    assert org.admin.get(f"/v1/keys/{created['id']}").json()["status"] == "expired"


def test_rotation_keeps_the_old_key_for_the_overlap_then_expires_it(org):
    created = org.admin.post("/v1/keys", json={"kind": "admin", "name": "rotating"}).json()
    rotated = org.admin.post(f"/v1/keys/{created['id']}/rotate", json={"overlap_seconds": 1.5})
    assert rotated.status_code == 200
    new = rotated.json()["new"]
    assert new["rotated_from"] == created["id"] and new["name"] == "rotating" and new["key"] != created["key"]
    with bearer(org, created["key"]) as old_client, bearer(org, new["key"]) as new_client:
        assert old_client.get("/v1/agents").status_code == 200  # during the overlap both work
        assert new_client.get("/v1/agents").status_code == 200
        time.sleep(1.6)
        assert code(old_client.get("/v1/agents")) == "key_expired"
        assert new_client.get("/v1/agents").status_code == 200


def test_per_key_rate_limit_answers_429_with_retry_after(org):
    created = org.admin.post("/v1/keys", json={"kind": "admin", "name": "slow", "rate_per_s": 1}).json()
    with bearer(org, created["key"]) as client:
        answers = [client.get("/v1/agents") for _ in range(8)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and code(limited[0]) == "rate_limited" and int(limited[0].headers["Retry-After"]) >= 1
    assert answers[0].status_code == 200


def test_agent_keys_cannot_manage_keys_or_policies(org, make_agent):
    signed = make_agent(org).client  # a registered agent signing its requests
    with bearer(org, org.agent_key) as unsigned:
        for client in (unsigned, signed):
            assert code(client.post("/v1/keys", json={"kind": "admin", "name": "escalate"})) == "forbidden"
            assert code(client.put("/v1/policies/org", json={"yaml": "rules: []"})) == "forbidden"
            assert code(client.get("/v1/keys")) == "forbidden"
            assert code(client.post("/v1/approvals/apr_x/approve", json={})) == "forbidden"


def test_revoked_or_expired_key_cannot_be_rotated(org):
    created = org.admin.post("/v1/keys", json={"kind": "agent", "name": "gone"}).json()
    org.admin.post(f"/v1/keys/{created['id']}/revoke")
    response = org.admin.post(f"/v1/keys/{created['id']}/rotate", json={})
    assert response.status_code == 409 and code(response) == "key_inactive"
