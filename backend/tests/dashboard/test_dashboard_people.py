"""People and one's own account in the browser, over the API's user management (#15, #21)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser
PASSWORD = "a long enough password 1"


def _login(org: Any, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=org.server.url, timeout=30, headers={"X-Forwarded-For": org.ip})
    assert client.post("/v1/auth/login", json={"email": email, "password": password}).status_code == 200
    return client


def test_dashboard_people_add_change_role_then_remove(org: Any, dashboard: Any) -> None:
    email = f"dana-{uuid.uuid4().hex[:6]}@example.com"
    page = dashboard(org)
    page.get_by_role("navigation").get_by_role("link", name="People").click()
    page.fill("#add-person input[name=email]", email)
    page.fill("#add-person input[name=password]", PASSWORD)
    page.select_option("#add-person select[name=role]", "viewer")
    page.get_by_role("button", name="Add person").click()
    assert page.get_by_role("status").inner_text() == f"added {email} as viewer"
    row = page.locator("#people tr", has_text=email)
    assert row.get_by_test_id("role").inner_text() == "viewer"
    with contextlib.closing(_login(org, email, PASSWORD)) as dana:
        row.locator("select[name=role]").select_option("admin")
        row.get_by_role("button", name="Change role").click()
        assert row.get_by_test_id("role").inner_text() == "admin"
        assert dana.get("/v1/auth/me").json()["user"]["role"] == "admin"
        # The last owner cannot make themselves an admin: the API's rule, said on the page.
        mine = page.locator("#people tr", has_text=org.email)
        mine.locator("select[name=role]").select_option("admin")
        mine.get_by_role("button", name="Change role").click()
        assert "at least one owner" in page.get_by_role("alert").inner_text()
        row.get_by_role("link", name="Remove…").click()
        assert dana.get("/v1/auth/me").status_code == 200  # asking is not doing
        page.get_by_role("button", name=f"Remove {email}").click()
        page.wait_for_url("**/people")
        assert page.locator("#people tr", has_text=email).count() == 0
        assert dana.get("/v1/auth/me").status_code == 401  # their session ended at once


def test_dashboard_account_ends_another_session_and_changes_the_password(org: Any, dashboard: Any) -> None:
    page = dashboard(org)
    with contextlib.closing(_login(org, org.email, org.password)) as elsewhere:
        page.locator(".who").click()
        page.wait_for_url("**/account")
        rows = page.locator("#sessions tbody tr")
        mine = rows.filter(has_text="this browser")
        assert mine.count() == 1 and rows.count() >= 3  # the fixture's API session, elsewhere and this one
        other = elsewhere.get("/v1/auth/sessions").json()
        current = next(s["id"] for s in other if s["current"])
        page.locator(f"[data-session='{current}']").get_by_role("button", name="End").click()
        page.wait_for_url("**/account")
        assert elsewhere.get("/v1/auth/me").status_code == 401
        assert page.locator(f"[data-session='{current}']").count() == 0
    new_password = "another long password 2"
    page.fill("input[name=current_password]", "not my password")
    page.fill("input[name=new_password]", new_password)
    page.fill("input[name=repeat]", new_password)
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("alert").inner_text() == "the current password is wrong"
    page.fill("input[name=current_password]", org.password)
    page.fill("input[name=new_password]", new_password)
    page.fill("input[name=repeat]", new_password)
    page.get_by_role("button", name="Change password").click()
    assert "password changed" in page.get_by_role("status").inner_text()
    assert org.session.get("/v1/auth/me").status_code == 401  # every other session ended
    page.goto("/")  # this one stays
    assert page.get_by_test_id("agents-count").is_visible()
    with contextlib.closing(_login(org, org.email, new_password)):
        pass


def test_dashboard_switches_between_the_organisations_one_login_reaches(org: Any, dashboard: Any) -> None:
    # A second organisation signed up with the owner's own e-mail and password: a second account of theirs.
    with httpx.Client(base_url=org.server.url, timeout=30, headers={"X-Forwarded-For": org.ip}) as api:
        body = {"email": org.email, "password": org.password, "org_name": "Second Org"}
        second = api.post("/v1/auth/signup", json=body).json()["org"]["id"]
    page = dashboard(org)  # the log-in lands in the oldest: the fixture's own organisation
    page.locator(".who").click()
    page.wait_for_url("**/account")
    assert org.id in page.locator("dl.fields").inner_text()
    page.get_by_role("button", name="Switch to Second Org").click()
    page.wait_for_url(f"{org.server.url}/")
    page.locator(".who").click()
    page.wait_for_url("**/account")
    assert second in page.locator("dl.fields").inner_text()
    assert page.get_by_role("button", name="Switch to Second Org").count() == 0
    assert page.locator("#orgs li").count() == 1  # back to the first, the only other one
