"""An agent's page: window use from the live policy, recent calls, key history, disabling; and tenancy."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

WINDOWED = """version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000, window: {per: 1d, max_sum: 5000}}
    rate: {per: 1h, max_calls: 10}
  - id: email
    tools: [send_email]
    effect: allow
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
"""


def _shipped(agent: Any) -> None:
    head = agent.ship([]).json()["head"]["seq"]
    assert agent.ship(agent.ledger.records(start=head + 1)).status_code == 200


def test_dashboard_agent_page_window_use_moves_after_a_shipped_call(org: Any, make_agent: Any, dashboard: Any) -> None:
    org.admin.put("/v1/policies/org", json={"yaml": WINDOWED}).raise_for_status()
    agent = make_agent(org, "billing-bot")
    agent.ledger.transfer_money("acct-1", 300)
    agent.ledger.send_email("ops@example.com", "hi")
    _shipped(agent)
    page = dashboard(org)
    page.locator("tr", has_text="billing-bot").get_by_role("link", name="billing-bot").click()
    page.wait_for_url(f"**/agents/{agent.id}")
    amount = page.locator("[data-window='small-transfers:amount'] [data-testid=used]")
    calls = page.locator("[data-window='small-transfers:calls'] [data-testid=used]")
    assert (amount.inner_text(), calls.inner_text()) == ("300 of 5,000", "1 of 10")
    assert "send_email" in page.locator("#recent").inner_text()

    agent.ledger.transfer_money("acct-2", 450.5)
    agent.ledger.transfer_money("acct-3", 2000)  # over the per-call max: denied, counts in no window
    _shipped(agent)
    page.reload()
    assert (amount.inner_text(), calls.inner_text()) == ("750.5 of 5,000", "2 of 10")
    first = page.locator("#recent tbody tr").first.inner_text()
    assert "transfer_money" in first and "deny" in first


def test_dashboard_agent_page_key_history_then_disable(org: Any, make_agent: Any, dashboard: Any) -> None:
    agent = make_agent(org, "rotating-bot", calls=2)
    old_key = agent.ledger.identity.public_key
    assert agent.ship(agent.ledger.records()).status_code == 200
    new = agent.ledger.rotate()
    agent.ledger.send_email("a@example.com", "after rotation")
    rest = agent.ledger.records(start=agent.ship([]).json()["head"]["seq"] + 1)
    with org.agent_client(new) as client:
        assert client.post("/v1/logs/batch", json={"records": rest}).status_code == 200
    page = dashboard(org)
    page.goto(f"/agents/{agent.id}")
    rows = page.get_by_test_id("keys").locator("tbody tr")
    assert rows.count() == 2
    assert old_key in rows.nth(0).inner_text() and "current" not in rows.nth(0).inner_text()
    assert new.public_key in rows.nth(1).inner_text() and "current" in rows.nth(1).inner_text()
    assert page.get_by_test_id("agent-key").inner_text() == new.public_key
    page.get_by_role("link", name="Disable rotating-bot…").click()
    page.get_by_role("link", name="Cancel").click()  # asking is not doing
    page.wait_for_url(f"**/agents/{agent.id}")
    assert org.admin.get(f"/v1/agents/{agent.id}").json()["disabled_at"] is None
    page.get_by_role("link", name="Disable rotating-bot…").click()
    page.get_by_role("button", name="Disable rotating-bot").click()
    page.wait_for_url(f"{org.server.url}/")
    assert org.admin.get(f"/v1/agents/{agent.id}").json()["disabled_at"] is not None


def test_dashboard_agent_page_of_another_organisation_is_not_found(
    org: Any, other_org: Any, make_agent: Any, dashboard: Any
) -> None:
    theirs = make_agent(other_org, "globex-bot", calls=3)
    assert theirs.ship(theirs.ledger.records()).status_code == 200
    other_org.admin.put("/v1/policies/org", json={"yaml": WINDOWED}).raise_for_status()
    page = dashboard(org)
    answer = page.goto(f"/agents/{theirs.id}")
    assert answer is not None and answer.status == 404
    assert "globex-bot" not in page.content() and theirs.ledger.identity.public_key not in page.content()
    answer = page.goto(f"/agents/{theirs.id}/disable")
    assert answer is not None and answer.status == 404
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "hashed_csrf")
    assert page.request.post(f"/agents/{theirs.id}/disable", form={"csrf": token}).status == 404
    assert other_org.admin.get(f"/v1/agents/{theirs.id}").json()["disabled_at"] is None


def test_dashboard_agent_page_says_its_figures_are_floors_past_its_walk(
    org: Any, make_agent: Any, dashboard: Any
) -> None:
    org.admin.put("/v1/policies/org", json={"yaml": WINDOWED}).raise_for_status()
    agent = make_agent(org, "busy-bot")
    for _ in range(2_510):  # 5,020 records (decision and outcome): past the page's walk of the newest 5,000
        agent.ledger.send_email("a@example.com", "x")
    agent.ledger.transfer_money("acct-1", 10)
    records = agent.ledger.records()
    for start in range(0, len(records), 1_000):
        assert agent.ship(records[start : start + 1_000]).status_code == 200
    page = dashboard(org)
    page.goto(f"/agents/{agent.id}")
    amount = page.locator("[data-window='small-transfers:amount'] [data-testid=used]")
    assert amount.inner_text() == "at least 10 of 5,000"
    assert "newest 5,000 records were read" in page.get_by_test_id("windows-note").inner_text()
