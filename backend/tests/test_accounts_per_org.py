"""One e-mail, accounts in several organisations: sign-up and adding a person never tell whether an address
has an account elsewhere, a log-in matches each account by its own password, and switching between them needs
no password again but only reaches the accounts that log-in matched (issue #15, item 10)."""

from __future__ import annotations

import uuid

import httpx
import pytest


def code(response):
    return response.json()["error"]["code"]


@pytest.fixture
def client(server, new_ip):
    with httpx.Client(base_url=server.url, timeout=30, headers={"X-Forwarded-For": new_ip()}) as made:
        yield made


def signup(client, email, password, org_name):
    response = client.post("/v1/auth/signup", json={"email": email, "password": password, "org_name": org_name})
    client.post("/v1/auth/logout")
    return response


def test_signup_with_an_email_that_has_an_account_elsewhere_answers_as_for_a_new_one(org, client):
    fresh = signup(client, f"{uuid.uuid4().hex}@example.com", "a long enough password", "new")
    known = signup(client, org.email, "a long enough password", "new")
    assert fresh.status_code == known.status_code == 201
    assert set(fresh.json()) == set(known.json()) and known.json()["org"]["id"] != org.id
    # The first account is untouched: its own password still logs in to its own organisation.
    me = client.post("/v1/auth/login", json={"email": org.email, "password": org.password, "org": org.id})
    assert me.status_code == 200 and me.json()["org"]["id"] == org.id


def test_adding_a_person_who_has_an_account_elsewhere_answers_as_for_anyone(org, other_org):
    unknown = org.admin.post("/v1/users", json={"email": f"{uuid.uuid4().hex}@example.com", "password": "p" * 12})
    known = org.admin.post("/v1/users", json={"email": other_org.email, "password": "p" * 12, "role": "viewer"})
    assert unknown.status_code == known.status_code == 201
    again = org.admin.post("/v1/users", json={"email": other_org.email, "password": "q" * 12})
    assert again.status_code == 409 and code(again) == "already_member"  # only this organisation's own members
    # The other organisation's account keeps its password and role.
    with httpx.Client(base_url=other_org.server.url, headers={"X-Forwarded-For": other_org.ip}) as client:
        me = client.post("/v1/auth/login", json={"email": other_org.email, "password": other_org.password})
    assert me.json()["org"]["id"] == other_org.id and me.json()["user"]["role"] == "owner"


def test_one_login_matches_each_account_by_its_own_password_and_switches_only_among_those(client):
    email, shared, other = f"{uuid.uuid4().hex}@example.com", "the same long password", "a different password"
    first = signup(client, email, shared, "first").json()["org"]["id"]
    second = signup(client, email, shared, "second").json()["org"]["id"]
    third = signup(client, email, other, "third").json()["org"]["id"]

    me = client.post("/v1/auth/login", json={"email": email, "password": shared}).json()
    assert me["org"]["id"] == first and {o["id"] for o in me["orgs"]} == {first, second}
    assert client.get("/v1/auth/me").json()["orgs"] == me["orgs"]

    old_cookie = client.cookies["hashed_session"]
    switched = client.post("/v1/auth/switch", json={"org_id": second})
    assert switched.status_code == 200 and switched.json()["org"]["id"] == second
    assert switched.json()["user"]["role"] == "owner"
    assert client.get("/v1/auth/me").json()["org"]["id"] == second
    with httpx.Client(base_url=str(client.base_url), cookies={"hashed_session": old_cookie}) as stale:
        assert code(stale.get("/v1/auth/me")) == "session_invalid"  # the session it switched from ended

    # Not matched by this log-in (another password), nor a stranger's organisation: refused alike.
    for target in (third, "org_000000000000000000000000"):
        refused = client.post("/v1/auth/switch", json={"org_id": target})
        assert refused.status_code == 404 and code(refused) == "org_not_found"

    # Naming the organisation picks it, with its own password.
    me = client.post("/v1/auth/login", json={"email": email, "password": other, "org": "third"}).json()
    assert me["org"]["id"] == third and [o["id"] for o in me["orgs"]] == [third]
    wrong = client.post("/v1/auth/login", json={"email": email, "password": other, "org": first})
    assert wrong.status_code == 401 and code(wrong) == "login_failed"


def test_a_switch_is_refused_once_the_target_account_has_a_new_password(client, server, new_ip):
    email, shared = f"{uuid.uuid4().hex}@example.com", "the same long password"
    signup(client, email, shared, "first")
    second = signup(client, email, shared, "second").json()["org"]["id"]
    assert client.post("/v1/auth/login", json={"email": email, "password": shared}).status_code == 200
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": new_ip()}) as owner:
        owner.post("/v1/auth/login", json={"email": email, "password": shared, "org": second})
        changed = owner.post("/v1/auth/password", json={"current_password": shared, "new_password": "now another one"})
        assert changed.status_code == 204
    refused = client.post("/v1/auth/switch", json={"org_id": second})
    assert refused.status_code == 404 and code(refused) == "org_not_found"
