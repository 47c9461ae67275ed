"""Log-in, sign-up, log-out, CSRF and tenancy, in a real browser against a real backend process."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_dashboard_redirects_to_login_without_a_session(server: Any, new_page: Callable[..., Any]) -> None:
    page = new_page("198.51.100.7", server.url)
    page.goto("/")
    assert page.url == f"{server.url}/login"
    assert page.get_by_role("heading", name="Log in").is_visible()


def test_dashboard_login_overview_and_logout(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org, calls=20)
    records = agent.ledger.records()
    assert agent.ship(records).status_code == 200
    decisions = [r for r in records if r["kind"] == "decision"]
    denials = org.admin.get("/v1/logs", params={"kind": "decision", "effect": "deny", "limit": 500}).json()["items"]

    page = dashboard(org)
    assert page.get_by_test_id("agents-count").inner_text() == "1"
    assert page.get_by_test_id("records-count").inner_text() == str(len(records))
    assert page.get_by_test_id("calls-count").inner_text() == str(len(decisions))
    assert page.get_by_test_id("denials-count").inner_text() == str(len(denials)) != "0"
    bars = page.get_by_test_id("chart").locator("title").all_text_contents()
    assert len(bars) == 24
    counted = [re.search(r"(\d+) allowed, (\d+) denied", bar) for bar in bars]
    assert sum(int(m[1]) + int(m[2]) for m in counted if m) == len(decisions)
    assert sum(int(m[2]) for m in counted if m) == len(denials)
    row = page.locator("tr", has_text="billing-bot")
    assert f"#{len(records)}" in row.inner_text()
    assert row.locator(".badge").inner_text() == "ok"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["hashed_session"]["httpOnly"] and cookies["hashed_session"]["sameSite"] == "Lax"
    assert cookies["hashed_csrf"]["httpOnly"] and cookies["hashed_csrf"]["sameSite"] == "Strict"

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/")
    assert page.url.endswith("/login")


def test_dashboard_login_wrong_password_says_so(org: Any, new_page: Callable[..., Any]) -> None:
    page = new_page(org.ip, org.server.url)
    page.goto("/login")
    page.fill("input[name=email]", org.email)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "wrong e-mail or password"
    assert "hashed_session" not in {c["name"] for c in page.context.cookies()}


def test_dashboard_signup_creates_an_organisation(server: Any, new_page: Callable[..., Any]) -> None:
    page = new_page("198.51.100.9", server.url)
    page.goto("/login")
    page.get_by_role("link", name="Create an organisation").click()
    page.fill("input[name=org_name]", "Initech")
    page.fill("input[name=email]", "peter@initech.example")
    page.fill("input[name=password]", "short")
    page.evaluate("document.querySelector('input[name=password]').removeAttribute('minlength')")
    page.click("button[type=submit]")
    assert "password" in page.get_by_role("alert").inner_text()
    page.fill("input[name=password]", "a long enough password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    assert page.locator(".who").inner_text() == "peter@initech.example"
    assert page.get_by_test_id("agents-count").inner_text() == "0"


def test_dashboard_form_without_csrf_token_is_refused(org: Any) -> None:
    # The API session (cookie) is valid, but the dashboard form carries no token: refused, nothing created.
    before = len(org.admin.get("/v1/keys").json())
    answer = org.session.post("/keys", data={"name": "forged", "kind": "admin"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "csrf_refused"
    org.session.cookies.set("hashed_csrf", "the browser's own token")
    forged = org.session.post("/keys", data={"name": "forged", "kind": "admin", "csrf": "a guessed token"})
    assert forged.status_code == 403
    assert len(org.admin.get("/v1/keys").json()) == before


def test_dashboard_never_shows_another_organisations_data(
    org: Any, other_org: Any, make_agent: Any, dashboard: Any
) -> None:
    mine = make_agent(org, "acme-bot", calls=3)
    assert mine.ship(mine.ledger.records()).status_code == 200
    theirs = make_agent(other_org, "globex-bot", calls=3)
    assert theirs.ship(theirs.ledger.records()).status_code == 200
    their_record = other_org.admin.get("/v1/logs", params={"limit": 1}).json()["items"][0]
    their_approval = theirs.client.post(
        "/v1/approvals",
        json={"call": "c-1", "tool": "transfer_money", "args": {"amount": 9}, "args_digest": "ab" * 32},
    ).json()
    their_key = other_org.admin.get("/v1/keys").json()[0]

    page = dashboard(org)
    for path in ("/", "/logs", "/approvals?status=", "/keys", "/policies"):
        page.goto(path)
        text = page.content()
        if path in ("/", "/logs"):
            assert "acme-bot" in text
        assert "globex-bot" not in text and their_key["prefix"] not in text and their_approval["id"] not in text
    missing = page.goto(f"/logs/{their_record['id']}")
    assert missing is not None and missing.status == 404
    page.goto("/logs?agent=globex-bot")
    assert "no agent globex-bot" in page.get_by_role("alert").inner_text()
    # Forms of my own page aimed at their objects: refused, and their objects are untouched.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "hashed_csrf")
    answer = page.request.post(f"/approvals/{their_approval['id']}/approve", form={"csrf": token})
    assert answer.status == 409 and "no approval request" in answer.text()
    answer = page.request.post(f"/keys/{their_key['id']}/revoke", form={"csrf": token})
    assert answer.status == 404
    assert other_org.admin.get(f"/v1/approvals/{their_approval['id']}").json()["status"] == "pending"
    assert other_org.admin.get(f"/v1/keys/{their_key['id']}").json()["status"] == "active"


def test_dashboard_session_cookie_is_secure_behind_https(org: Any) -> None:
    # Through a TLS-terminating proxy (loopback is trusted for X-Forwarded-*): the cookies get `Secure`.
    headers = {"X-Forwarded-For": org.ip, "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=org.server.url, headers=headers, timeout=30) as client:
        page = client.get("/login")
        assert "Secure" in page.headers["set-cookie"]
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        client.cookies.set("hashed_csrf", page.cookies["hashed_csrf"])
        answer = client.post("/login", data={"csrf": token[1], "email": org.email, "password": org.password})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    session = next(v for v in answer.headers.get_list("set-cookie") if v.startswith("hashed_session="))
    assert "Secure" in session and "HttpOnly" in session and "SameSite=lax" in session
