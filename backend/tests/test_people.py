"""Sign-up, log-in, sessions (server-side), log-out, users, per-IP rate limits, CSRF."""

from __future__ import annotations

import uuid

import httpx


def code(response):
    return response.json()["error"]["code"]


def test_signup_logs_in_and_me_answers(org):
    me = org.session.get("/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == org.email and me.json()["user"]["role"] == "owner"
    assert me.json()["org"]["id"] == org.id


def test_session_cookie_is_http_only_and_same_site(server, new_ip):
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": new_ip()}) as client:
        response = client.post(
            "/v1/auth/signup",
            json={"email": f"{uuid.uuid4().hex}@example.com", "password": "a long enough password", "org_name": "x"},
        )
    cookie = response.headers["set-cookie"].lower()
    assert "hashed_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_login_logout_and_the_session_is_gone(org):
    with httpx.Client(base_url=org.server.url, headers={"X-Forwarded-For": org.ip}) as client:
        assert client.post("/v1/auth/login", json={"email": org.email, "password": org.password}).status_code == 200
        token = client.cookies["hashed_session"]
        assert client.get("/v1/auth/me").status_code == 200
        assert client.post("/v1/auth/logout").status_code == 204
    # The cookie value alone no longer works: the session row was revoked server-side.
    with httpx.Client(base_url=org.server.url, cookies={"hashed_session": token}) as replay:
        response = replay.get("/v1/auth/me")
    assert response.status_code == 401 and code(response) == "session_invalid"


def test_wrong_password_and_unknown_email_look_the_same(org):
    wrong = org.session.post("/v1/auth/login", json={"email": org.email, "password": "not the password"})
    unknown = org.session.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever"})
    assert wrong.status_code == unknown.status_code == 401
    assert code(wrong) == code(unknown) == "login_failed"


def test_login_is_rate_limited_per_ip(custom_server, new_ip):
    # A slow refill: on a busy machine 40 log-ins (an argon2 check each) may take longer than the burst lasts.
    server = custom_server(HASHED_BACKEND_AUTH_RATE_PER_IP="0.01")
    ip = new_ip()
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": ip}) as client:
        answers = [
            client.post("/v1/auth/login", json={"email": "x@example.com", "password": "guess"}) for _ in range(40)
        ]
    assert [r.status_code for r in answers[:20]] == [401] * 20  # the burst
    limited = next(r for r in answers if r.status_code != 401)
    assert limited.status_code == 429 and code(limited) == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another address is not affected.
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": new_ip()}) as client:
        assert client.post("/v1/auth/login", json={"email": "x@example.com", "password": "guess"}).status_code == 401


def test_session_write_from_a_foreign_origin_is_refused(org):
    response = org.session.post(
        "/v1/keys", json={"kind": "admin", "name": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403 and code(response) == "csrf_refused"
    allowed = org.session.post(
        "/v1/keys", json={"kind": "admin", "name": "x"}, headers={"Origin": "https://dashboard.example"}
    )
    assert allowed.status_code == 201


def test_users_are_listed_and_added_within_the_org(org, other_org):
    email = f"second-{uuid.uuid4().hex[:8]}@example.com"
    created = org.admin.post("/v1/users", json={"email": email, "password": "another long password"})
    assert created.status_code == 201 and created.json()["role"] == "admin"
    emails = {u["email"] for u in org.admin.get("/v1/users").json()}
    assert emails == {org.email, email}
    assert email not in {u["email"] for u in other_org.admin.get("/v1/users").json()}
    with httpx.Client(base_url=org.server.url, headers={"X-Forwarded-For": org.ip}) as client:
        me = client.post("/v1/auth/login", json={"email": email, "password": "another long password"})
    assert me.json()["org"]["id"] == org.id


def test_anonymous_requests_are_401(server):
    with httpx.Client(base_url=server.url) as client:
        for path in ("/v1/auth/me", "/v1/keys", "/v1/agents", "/v1/logs", "/v1/approvals", "/v1/policies/org"):
            response = client.get(path)
            assert response.status_code == 401 and code(response) == "auth_required", path


def test_admin_key_is_not_a_person(org):
    assert code(org.admin.get("/v1/auth/me")) == "forbidden"


def test_a_fleet_registering_from_one_address_is_not_throttled_as_one_client(custom_server, new_org_on, new_ip):
    # Agents restarting together behind one address (a node, a NAT) each register: the sign-up and log-in limit
    # per address (20 at once, then one per 100 s here) must not make most of them wait. It once did, and a
    # restarted agent whose registration was refused could not ask the backend about its approved call.
    server = custom_server(HASHED_BACKEND_AUTH_RATE_PER_IP="0.01")
    org = new_org_on(server)
    ip = new_ip()
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": ip}) as client:
        made = [org.admin.post("/v1/keys", json={"kind": "agent", "name": f"node-{n}"}) for n in range(25)]
        keys = [response.json()["key"] for response in made]
        answers = [
            client.post(
                "/v1/agents/challenge",
                json={"public_key": f"{n:02x}" * 32, "name": f"node-{n}"},
                headers={"Authorization": f"Bearer {key}"},
            )
            for n, key in enumerate(keys)
        ]
        assert [r.status_code for r in answers] == [201] * 25, [r.text for r in answers if r.status_code != 201]
        logins = [client.post("/v1/auth/login", json={"email": org.email, "password": "wrong"}) for _ in range(25)]
    assert logins[-1].status_code == 429  # the address's sign-up and log-in limit still holds


def test_agent_registration_counts_against_its_key_and_a_wrong_key_is_still_told_so(org, new_ip):
    created = org.admin.post("/v1/keys", json={"kind": "agent", "name": "limited", "rate_per_s": 1}).json()
    body = {"public_key": "ab" * 32, "name": "limited"}
    with httpx.Client(base_url=org.server.url, headers={"X-Forwarded-For": new_ip()}) as client:
        answers = [
            client.post("/v1/agents/challenge", json=body, headers={"Authorization": f"Bearer {created['key']}"})
            for _ in range(8)
        ]
        limited = [r for r in answers if r.status_code == 429]
        assert answers[0].status_code == 201 and limited and code(limited[0]) == "rate_limited"
        wrong = client.post("/v1/agents/challenge", json=body, headers={"Authorization": "Bearer hashed_agent_x"})
    assert wrong.status_code == 401  # what to fix, however busy its key
