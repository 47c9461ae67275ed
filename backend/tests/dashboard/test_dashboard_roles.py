"""A viewer reads the dashboard but changes nothing through it, exactly as through the API (#15, #21)."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

import httpx

PASSWORD = "a long enough password 1"


def _person(org: Any, role: str) -> httpx.Client:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = org.admin.post("/v1/users", json={"email": email, "password": PASSWORD, "role": role})
    assert created.status_code == 201, created.text
    client = httpx.Client(base_url=org.server.url, timeout=30, headers={"X-Forwarded-For": org.ip})
    assert client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
    return client


def _post_form(client: httpx.Client, page: str, target: str, fields: dict[str, str]) -> httpx.Response:
    shown = client.get(page)
    assert shown.status_code == 200, shown.text
    token = re.search(r'name="csrf" value="([^"]+)"', shown.text)
    assert token is not None
    return client.post(target, data={**fields, "csrf": token[1]})


def test_a_viewer_sees_the_keys_page_but_cannot_create_rotate_or_revoke_a_key(org: Any) -> None:
    key = org.admin.post("/v1/keys", json={"name": "ops", "kind": "admin"}).json()
    with contextlib.closing(_person(org, "viewer")) as viewer:
        assert viewer.get("/keys").status_code == 200
        for target, fields in [
            ("/keys", {"name": "sneaky", "kind": "admin"}),
            (f"/keys/{key['id']}/revoke", {}),
            (f"/keys/{key['id']}/rotate", {}),
        ]:
            answer = _post_form(viewer, "/keys", target, fields)
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "viewer_read_only", target
    names = [k["name"] for k in org.admin.get("/v1/keys").json()]
    assert "sneaky" not in names
    assert org.admin.get(f"/v1/keys/{key['id']}").json()["status"] == "active"


def test_a_viewer_cannot_change_the_policy_while_an_admin_can(org: Any) -> None:
    policy = "version: 1\ndefault: deny\nrules: []\n"
    with contextlib.closing(_person(org, "viewer")) as viewer:
        answer = _post_form(viewer, "/policies", "/policies", {"yaml": policy, "comment": "viewer"})
        assert answer.status_code == 403
    with contextlib.closing(_person(org, "admin")) as admin:
        answer = _post_form(admin, "/policies", "/policies", {"yaml": policy, "comment": "admin"})
        assert answer.status_code in (200, 303), answer.text


def test_a_viewer_sees_the_people_but_cannot_add_change_or_remove_anyone(org: Any) -> None:
    owner = org.session.get("/v1/auth/me").json()["user"]
    with contextlib.closing(_person(org, "viewer")) as viewer:
        shown = viewer.get("/people")
        assert shown.status_code == 200 and owner["email"] in shown.text
        assert "Add person" not in shown.text and "Change role" not in shown.text
        for target, fields in [
            ("/people", {"email": "sneaky@example.com", "password": PASSWORD, "role": "owner"}),
            (f"/people/{owner['id']}/role", {"role": "viewer"}),
            (f"/people/{owner['id']}/remove", {}),
        ]:
            answer = _post_form(viewer, "/people", target, fields)
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "viewer_read_only", target
        assert viewer.get("/account").status_code == 200  # their own account stays theirs to manage
    people = {p["email"]: p["role"] for p in org.admin.get("/v1/users").json()}
    assert "sneaky@example.com" not in people and people[owner["email"]] == "owner"


def test_an_admin_cannot_remove_an_owner_through_the_dashboard(org: Any) -> None:
    owner = org.session.get("/v1/auth/me").json()["user"]
    with contextlib.closing(_person(org, "admin")) as admin:
        answer = _post_form(admin, "/people", f"/people/{owner['id']}/remove", {})
        assert answer.status_code == 403 and "only an owner" in answer.text
    assert org.session.get("/v1/auth/me").status_code == 200
