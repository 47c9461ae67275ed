"""Logs (search, detail, live feed), approvals, keys, the policy editor and the offline API docs, in a browser."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

BROKEN = """version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: maybe
"""
FIXED = (
    BROKEN.replace("effect: maybe", "effect: allow")
    + """  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""
)


def test_dashboard_logs_search_filters_and_record_detail(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org, calls=30)
    assert agent.ship(agent.ledger.records()).status_code == 200
    page = dashboard(org)
    page.get_by_role("navigation").get_by_role("link", name="Logs").click()
    page.fill("input[name=tool]", "delete_records")
    page.select_option("select[name=effect]", "deny")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#results tbody tr")
    assert rows.count() == 3  # calls 9, 19 and 29 are the refused deletes
    for text in rows.all_inner_texts():
        assert "delete_records" in text and "deny" in text
    page.fill("input[name=since]", "2100-01-01T00:00")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#results tbody tr").count() == 0 and "No record matches" in page.content()
    page.fill("input[name=since]", "2000-01-01T00:00")
    page.fill("input[name=until]", "2100-01-01T00:00")
    page.get_by_role("button", name="Search").click()
    assert rows.count() == 3
    rows.first.get_by_role("link").click()
    assert page.get_by_test_id("verified").inner_text() == "verified"
    stored = org.admin.get("/v1/logs", params={"tool": "delete_records", "limit": 1}).json()["items"][0]
    assert page.get_by_test_id("hash").inner_text() == stored["hash"]
    assert stored["record"]["prev"] in page.content() and stored["record"]["sig"] in page.content()
    page.goto("/logs?agent=billing-bot")
    export = page.request.get(page.get_by_role("link", name="Export billing-bot").get_attribute("href"))
    assert export.ok and len(export.text().splitlines()) == len(agent.ledger.records())
    # The current filter, exported: every record it finds (the same keyset search, page after page).
    page.goto("/logs?agent=billing-bot&effect=allow")
    with page.expect_download() as download:
        page.get_by_test_id("export-filter").click()
    lines = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    allowed = [r for r in agent.ledger.records() if r["kind"] == "decision" and r.get("effect") == "allow"]
    assert len(lines) == len(allowed) > 0 and {line["effect"] for line in lines} == {"allow"}
    assert {line["record"]["hash"] for line in lines} == {r["hash"] for r in allowed}


def test_dashboard_logs_paginate_with_a_cursor(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org, calls=40)
    records = agent.ledger.records()
    assert agent.ship(records).status_code == 200
    page = dashboard(org)
    page.goto("/logs")
    seen = page.locator("#results tbody tr").all_inner_texts()
    page.get_by_role("link", name="Older records").click()
    seen += page.locator("#results tbody tr").all_inner_texts()
    assert len(seen) == len(records) == len(set(seen))


def test_dashboard_live_feed_shows_a_shipped_record(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org)
    page = dashboard(org)
    page.goto("/logs")
    page.locator("#live-status", has_text="live").wait_for()
    agent.ledger.send_email("ops@example.com", "hello")
    shipped = time.monotonic()
    assert agent.ship(agent.ledger.records()).status_code == 200
    row = page.locator("#live-feed tbody tr", has_text="decision")
    row.wait_for(timeout=5_000)
    latency = time.monotonic() - shipped
    assert "send_email" in row.inner_text() and "allow" in row.inner_text()
    assert page.locator("#live-feed tbody tr", has_text="outcome").count() == 1
    print(f"live feed: record shown {latency * 1000:.0f} ms after the ship request started")
    assert latency < 2.0, f"the live feed showed the record {latency:.2f} s after it was stored"


def test_dashboard_approve_a_pending_call_with_a_comment(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org)
    asked = agent.client.post(
        "/v1/approvals",
        json={
            "call": "call-42",
            "tool": "transfer_money",
            "args": {"to": "acct-9", "amount": 700},
            "args_digest": "cd" * 32,
            "reason": "over 500 needs a person",
        },
    )
    assert asked.status_code == 201, asked.text
    approval = asked.json()
    page = dashboard(org)
    assert page.get_by_test_id("pending-count").inner_text() == "1"
    page.get_by_role("navigation").get_by_role("link", name="Approvals").click()
    card = page.locator(f"[data-approval='{approval['id']}']")
    assert "acct-9" in card.inner_text() and "over 500 needs a person" in card.inner_text()
    card.locator("input[name=comment]").fill("known supplier")
    with page.expect_navigation():
        card.get_by_role("button", name="Approve").click()
    assert page.url == f"{org.server.url}/approvals", page.content()
    assert page.locator(f"[data-approval='{approval['id']}']").count() == 0  # left the pending queue
    answer = agent.client.get(f"/v1/approvals/{approval['id']}", params={"wait": 5}).json()  # the agent's long-poll
    assert answer["status"] == "approved" and answer["comment"] == "known supplier"
    assert answer["decided_by"] == org.email and answer["signature"]


def test_dashboard_create_key_shown_once_then_revoke(org: Any, dashboard: Any) -> None:
    page = dashboard(org)
    page.get_by_role("navigation").get_by_role("link", name="API keys").click()
    page.fill("input[name=name]", "support-bot")
    page.select_option("select[name=kind]", "admin")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key").inner_text()
    assert secret.startswith("hashed_admin_")
    url = org.server.url
    headers = {"Authorization": f"Bearer {secret}", "X-Forwarded-For": org.ip}
    assert httpx.get(f"{url}/v1/keys", headers=headers).status_code == 200
    page.goto("/keys")
    assert secret not in page.content()  # never shown again
    page.locator("tr", has_text="support-bot").get_by_role("button", name="Rotate").click()
    rotated = page.get_by_test_id("new-key").inner_text()
    assert rotated.startswith("hashed_admin_") and rotated != secret
    assert httpx.get(f"{url}/v1/keys", headers={**headers, "Authorization": f"Bearer {rotated}"}).status_code == 200
    assert httpx.get(f"{url}/v1/keys", headers=headers).status_code == 200  # the old key overlaps for an hour
    page.goto("/keys")
    old_row = page.locator("tr", has_text="support-bot").filter(has_text=secret[:19])
    old_row.get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/keys")
    assert old_row.locator(".badge").inner_text() == "revoked"
    refused = httpx.get(f"{url}/v1/keys", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_revoked"


def test_dashboard_policy_editor_shows_errors_then_saves(org: Any, dashboard: Any) -> None:
    page = dashboard(org)
    page.get_by_role("navigation").get_by_role("link", name="Policies").click()
    page.wait_for_url("**/policies")  # loaded: htmx (a deferred script) listens to the editor's input from here on
    page.fill("#policy-yaml", BROKEN)
    issues = page.get_by_test_id("issues")
    issues.filter(has_text="line 6").wait_for()  # validated as typed, at line and field, by the core
    assert "rules[0].effect" in issues.inner_text()
    page.get_by_role("button", name="Save as a new version").click()
    assert "line 6" in page.get_by_role("alert").inner_text()
    assert org.admin.get("/v1/policies/org").status_code == 404  # nothing stored
    page.wait_for_load_state("load")  # the page the form posted to: typing before htmx listens would go unseen
    page.fill("#policy-yaml", FIXED)
    issues.filter(has_text="Valid policy").wait_for()
    page.fill("#test-form input[name=tool]", "delete_records")
    page.get_by_role("button", name="Decide").click()
    result = page.get_by_test_id("test-result")
    result.filter(has_text="never-delete").wait_for()
    assert "deny" in result.inner_text()
    page.fill("input[name=comment]", "first version")
    page.get_by_role("button", name="Save as a new version").click()
    assert page.get_by_role("status").inner_text() == "saved as version 1"
    stored = org.admin.get("/v1/policies/org").json()
    assert stored["yaml"] == FIXED and stored["comment"] == "first version" and stored["created_by"] == org.email
    # Drop a rule: the diff says so; saving needs the tick; then roll back to version 1 in one click.
    page.wait_for_load_state("load")
    page.fill("#policy-yaml", FIXED.split("  - id: never-delete")[0])
    page.get_by_role("button", name="Compare with live").click()
    page.get_by_test_id("diff").filter(has_text="rule never-delete").wait_for()
    page.get_by_role("button", name="Save as a new version").click()
    assert "never-delete" in page.get_by_role("alert").inner_text()
    page.check("input[name=allow_removals]")
    page.get_by_role("button", name="Save as a new version").click()
    assert page.get_by_role("status").inner_text() == "saved as version 2"
    page.locator("[data-version='1']").get_by_role("button", name="Restore").click()
    assert page.get_by_role("status").inner_text() == "version 1 restored as version 3"
    assert org.admin.get("/v1/policies/org").json()["yaml"] == FIXED


def test_dashboard_api_docs_load_without_any_other_host(server: Any, new_page: Any) -> None:
    page = new_page("198.51.100.11", server.url)
    elsewhere: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            (elsewhere.append(route.request.url), route.abort())
            if not route.request.url.startswith(server.url)
            else route.continue_()
        ),
    )
    page.goto("/docs")
    page.locator(".swagger-ui .info .title", has_text="Hashed backend").wait_for()
    page.locator(".opblock-summary-path", has_text="/v1/logs/batch").first.wait_for()
    page.goto("/redoc")
    page.locator("h1", has_text="Hashed backend").wait_for()
    page.get_by_text("/v1/logs/batch").first.wait_for(state="attached")
    assert [url for url in elsewhere if "redoc.ly" not in url] == []  # ReDoc's footer logo only, blocked by CSP


def test_dashboard_screenshots(org: Any, make_agent: Any, dashboard: Any, tmp_path: Path) -> None:
    """The README's screenshots; HASHED_DASHBOARD_SCREENSHOTS=docs/img writes them there."""
    folder = Path(os.environ.get("HASHED_DASHBOARD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, calls in (("billing-bot", 30), ("support-bot", 12)):
        agent = make_agent(org, name, calls=calls)
        assert agent.ship(agent.ledger.records()).status_code == 200
    agent.client.post(
        "/v1/approvals",
        json={
            "call": "c-7",
            "tool": "transfer_money",
            "args": {"to": "acct-7", "amount": 800},
            "args_digest": "ef" * 32,
            "reason": "amount above 500 needs approval",
            "rule": "small-transfers",
        },
    ).raise_for_status()
    windowed = FIXED.replace(
        "    effect: allow\n",
        "    effect: allow\n    limits:\n      amount: {max: 1000, window: {per: 1d, max_sum: 5000}}\n"
        "    rate: {per: 1h, max_calls: 20}\n",
        1,
    )
    org.admin.put("/v1/policies/org", json={"yaml": windowed}).raise_for_status()
    org.admin.post("/v1/users", json={"email": "dana@example.com", "password": "a long password 1", "role": "viewer"})
    page = dashboard(org)
    page.set_viewport_size({"width": 1280, "height": 800})
    for name, path in (
        ("overview", "/"),
        ("logs", "/logs"),
        ("approvals", "/approvals"),
        ("policies", "/policies"),
        ("keys", "/keys"),
        ("agent", f"/agents/{agent.id}"),
        ("people", "/people"),
    ):
        page.goto(path)
        page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=False)
        assert (folder / f"dashboard-{name}.png").stat().st_size > 10_000


def test_dashboard_disable_agent_after_confirmation(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org, "rogue-bot", calls=2)
    assert agent.ship(agent.ledger.records()).status_code == 200
    page = dashboard(org)
    page.locator("tr", has_text="rogue-bot").get_by_role("link", name="Disable…").click()
    assert agent.client.get("/v1/policy").status_code != 403  # asking is not doing
    page.get_by_role("button", name="Disable rogue-bot").click()
    page.wait_for_url(f"{org.server.url}/")
    assert "(disabled)" in page.locator("tr", has_text="rogue-bot").inner_text()
    refused = agent.client.get("/v1/policy")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "agent_disabled"


def _ask(agent: Any, call: str, amount: int) -> dict[str, Any]:
    asked = agent.client.post(
        "/v1/approvals",
        json={
            "call": call,
            "tool": "transfer_money",
            "args": {"to": f"acct-{amount}", "amount": amount},
            "args_digest": "ab" * 32,
            "reason": "over 500 needs a person",
        },
    )
    assert asked.status_code == 201, asked.text
    return dict(asked.json())


def test_dashboard_approvals_queue_shows_a_new_request_without_reload(
    org: Any, make_agent: Any, dashboard: Any
) -> None:
    agent = make_agent(org)
    first = _ask(agent, "call-1", 600)
    page = dashboard(org)
    page.goto("/approvals")
    page.locator(f"[data-approval='{first['id']}'] input[name=comment]").fill("half typed")
    second = _ask(agent, "call-2", 900)
    card = page.locator(f"[data-approval='{second['id']}']")
    card.wait_for()  # polled in, no reload
    assert "acct-900" in card.inner_text()
    assert page.locator("[data-approval]").first.get_attribute("data-approval") == second["id"]  # newest on top
    assert page.locator(f"[data-approval='{first['id']}'] input[name=comment]").input_value() == "half typed"
    with page.expect_response(lambda response: "/approvals/new" in response.url):
        pass  # one more poll after the card came in
    assert page.locator("[data-approval]").count() == 2  # nothing shown twice
    card.locator("input[name=comment]").fill("too much at once")
    with page.expect_navigation():
        card.get_by_role("button", name="Deny").click()
    page.get_by_role("link", name="Denied").click()
    answered = page.locator(f"[data-approval='{second['id']}']")
    assert answered.get_by_test_id("comment").inner_text() == "too much at once"
    assert f"denied by {org.email}" in answered.inner_text()
    answer = agent.client.get(f"/v1/approvals/{second['id']}", params={"wait": 5}).json()
    assert answer["status"] == "denied" and answer["comment"] == "too much at once"


def test_dashboard_key_expiry_set_at_creation_and_at_rotation(org: Any, dashboard: Any) -> None:
    page = dashboard(org)
    page.goto("/keys")
    page.fill("input[name=name]", "expiring-bot")
    page.fill("form[action='/keys'] input[name=expires_in_days]", "30")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key").inner_text()
    row = page.locator("tr", has_text="expiring-bot")
    assert row.get_by_test_id("days-left").inner_text() == "in 30 days"
    stored = next(k for k in org.admin.get("/v1/keys").json() if k["name"] == "expiring-bot")
    assert row.get_by_test_id("expires").inner_text().startswith(stored["expires_at"])
    row.locator("input[name=expires_in_days]").fill("3")
    row.get_by_role("button", name="Rotate").click()
    assert page.get_by_test_id("new-key").inner_text() != secret
    new_row = page.locator("tr", has_text="expiring-bot").filter(has_text="in 3 days")
    assert new_row.get_by_test_id("days-left").get_attribute("class") == "error"  # under a week: said in red
    old_row = page.locator("tr", has_text="expiring-bot").filter(has_text=secret[:19])
    assert old_row.get_by_test_id("days-left").inner_text() == "in 0 days"  # the hour of overlap


def test_dashboard_approvals_queue_shows_an_answer_given_elsewhere(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org)
    asked = _ask(agent, "call-3", 700)
    page = dashboard(org)
    page.goto("/approvals")
    card = page.locator(f"[data-approval='{asked['id']}']")
    assert card.get_by_role("button", name="Approve").is_visible()
    org.admin.post(f"/v1/approvals/{asked['id']}/approve", json={"comment": "done from the CLI"}).raise_for_status()
    card.get_by_test_id("comment").filter(has_text="done from the CLI").wait_for()  # polled in, no reload
    assert "approved by key:ops" in card.inner_text()
    assert card.get_by_role("button", name="Approve").count() == 0
