"""People (issue #15): roles that mean something, removing a person, changing a password, one's sessions, all
confined to the organisation."""

from __future__ import annotations

import contextlib
import uuid

import httpx
import pytest

PASSWORD = "another long password"


def code(response):
    return response.json()["error"]["code"]


def add(org, role):
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = org.admin.post("/v1/users", json={"email": email, "password": PASSWORD, "role": role})
    assert created.status_code == 201, created.text
    return created.json()["id"], email


@contextlib.contextmanager
def login(org, email, password=PASSWORD):
    with httpx.Client(base_url=org.server.url, timeout=30, headers={"X-Forwarded-For": org.ip}) as client:
        response = client.post("/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        yield client


@pytest.fixture
def viewer(org):
    _, email = add(org, "viewer")
    with login(org, email) as client:
        yield client


def test_a_viewer_reads_but_changes_nothing(org, viewer, make_agent):
    agent = make_agent(org)
    key_id = org.admin.get("/v1/keys").json()[0]["id"]
    writes = [
        ("PUT", "/v1/policies/org", {"yaml": "version: 1\ndefault: allow\nrules: []\n"}),
        ("DELETE", "/v1/policies/org", None),
        ("POST", "/v1/keys", {"kind": "admin", "name": "mine"}),
        ("POST", f"/v1/keys/{key_id}/rotate", {"overlap_seconds": 0}),
        ("POST", f"/v1/keys/{key_id}/revoke", None),
        ("POST", "/v1/users", {"email": "x@example.com", "password": PASSWORD}),
        ("POST", "/v1/approvals/apr_x/approve", {}),
        ("POST", "/v1/approvals/apr_x/deny", {}),
        ("DELETE", f"/v1/agents/{agent.id}", None),
    ]
    for method, path, body in writes:
        response = viewer.request(method, path, json=body)
        assert response.status_code == 403 and code(response) == "viewer_read_only", (method, path, response.text)
    for path in ("/v1/logs", "/v1/keys", "/v1/agents", "/v1/users", "/v1/approvals", "/v1/auth/me"):
        assert viewer.get(path).status_code == 200, path
    assert viewer.get("/v1/auth/me").json()["user"]["role"] == "viewer"
    assert org.admin.get(f"/v1/keys/{key_id}").json()["revoked_at"] is None


def test_only_an_owner_adds_changes_or_removes_owners(org):
    admin_id, admin_email = add(org, "admin")
    owner_id = org.session.get("/v1/auth/me").json()["user"]["id"]
    with login(org, admin_email) as admin:
        refused = admin.post("/v1/users", json={"email": "o@example.com", "password": PASSWORD, "role": "owner"})
        assert refused.status_code == 403 and code(refused) == "owner_required"
        assert code(admin.delete(f"/v1/users/{owner_id}")) == "owner_required"
        assert code(admin.put(f"/v1/users/{owner_id}/role", json={"role": "viewer"})) == "owner_required"
        viewer_id, _ = add(org, "viewer")
        promoted = admin.put(f"/v1/users/{viewer_id}/role", json={"role": "admin"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert org.session.put(f"/v1/users/{admin_id}/role", json={"role": "owner"}).json()["role"] == "owner"


def test_the_last_owner_stays(org):
    owner_id = org.session.get("/v1/auth/me").json()["user"]["id"]
    assert code(org.session.delete(f"/v1/users/{owner_id}")) == "last_owner"
    assert code(org.session.put(f"/v1/users/{owner_id}/role", json={"role": "admin"})) == "last_owner"
    assert org.session.get("/v1/auth/me").json()["user"]["role"] == "owner"


def test_a_removed_person_is_logged_out_and_cannot_log_in(org, other_org):
    user_id, email = add(org, "admin")
    with login(org, email) as them:
        assert them.get("/v1/keys").status_code == 200
        assert other_org.admin.delete(f"/v1/users/{user_id}").status_code == 404  # another organisation's
        assert org.admin.delete(f"/v1/users/{user_id}").status_code == 204
        assert code(them.get("/v1/keys")) == "session_invalid"
        gone = them.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert gone.status_code == 401
    assert email not in {u["email"] for u in org.admin.get("/v1/users").json()}
    assert org.admin.delete(f"/v1/users/{user_id}").status_code == 404


def test_changing_a_password_ends_the_other_sessions(org):
    _, email = add(org, "admin")
    with login(org, email) as here, login(org, email) as elsewhere:
        wrong = here.post("/v1/auth/password", json={"current_password": "nope", "new_password": "x" * 12})
        assert wrong.status_code == 403 and code(wrong) == "password_wrong"
        changed = here.post("/v1/auth/password", json={"current_password": PASSWORD, "new_password": "y" * 12})
        assert changed.status_code == 204
        assert here.get("/v1/auth/me").status_code == 200
        assert code(elsewhere.get("/v1/auth/me")) == "session_invalid"
        old = elsewhere.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert old.status_code == 401
    with login(org, email, "y" * 12):
        pass
    assert code(org.admin.post("/v1/auth/password", json={"current_password": "a", "new_password": "b" * 12})) == (
        "forbidden"  # an API key is not a person
    )


def test_sessions_are_listed_and_revoked_by_their_owner_only(org, other_org):
    _, email = add(org, "admin")
    with login(org, email) as here, login(org, email) as elsewhere:
        listed = here.get("/v1/auth/sessions").json()
        assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
        other = next(s["id"] for s in listed if not s["current"])
        assert other_org.session.post(f"/v1/auth/sessions/{other}/revoke").status_code == 404
        assert org.session.post(f"/v1/auth/sessions/{other}/revoke").status_code == 404  # not the owner's session
        assert elsewhere.get("/v1/auth/me").status_code == 200
        assert here.post(f"/v1/auth/sessions/{other}/revoke").status_code == 204
        assert code(elsewhere.get("/v1/auth/me")) == "session_invalid"
        assert [s["current"] for s in here.get("/v1/auth/sessions").json()] == [True]
