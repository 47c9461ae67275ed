"""`hashed people …` against a real backend: add, list, change a role, remove; and the roles mean something."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "a first password long enough"


def test_people_add_list_role_remove(logged_in, org):
    cli = logged_in
    email = f"dana-{uuid.uuid4().hex[:8]}@example.com"
    result = cli("people", "add", email, "--role", "viewer", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert f"added {email} as viewer" in result.output
    people = {p["email"]: p for p in json.loads(cli("people", "list", "--json").output)}
    assert people[email]["role"] == "viewer" and people[org.email]["role"] == "owner"
    assert email in cli("people", "list").output

    with httpx.Client(base_url=org.url, timeout=30) as dana:  # the viewer logs in and reads, but changes nothing
        assert dana.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
        assert dana.get("/v1/keys").status_code == 200
        refused = dana.post("/v1/keys", json={"kind": "admin", "name": "mine"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "viewer_read_only"
        assert f"{email} is now admin" in cli("people", "role", people[email]["id"], "admin").output
        assert dana.post("/v1/keys", json={"kind": "admin", "name": "mine"}).status_code == 201

        assert "removed" in cli("people", "remove", people[email]["id"], "--yes").output
        assert dana.get("/v1/keys").status_code == 401  # their session ended with them
    assert email not in {p["email"] for p in json.loads(cli("people", "list", "--json").output)}


def test_people_role_refuses_an_unknown_role_and_remove_asks_first(logged_in, org):
    cli = logged_in
    result = cli("people", "role", "usr_x", "superuser", code=2)
    assert "owner, admin, viewer" in result.output
    owner = next(p for p in json.loads(cli("people", "list", "--json").output) if p["email"] == org.email)
    cli("people", "remove", owner["id"], input="n\n", code=1)  # declined: nothing happens
    assert org.email in cli("people", "list").output
