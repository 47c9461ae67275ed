"""No request reads or writes another organisation's data: every endpoint, tried across organisations."""

from __future__ import annotations

import httpx
import pytest

from hashed.protocol import Checkpoint, agent_origin, sign_checkpoint

POLICY = "version: 1\nrules:\n  - {id: r1, tools: [send_email], effect: allow}\n"
DIGEST = "cd" * 32

# Every operation of the API, and how this module tries it across organisations.
BY_ID = {  # another org's id in the path or a filter: 404, nothing changed
    ("GET", "/v1/keys/{key_id}"): ("GET", "/v1/keys/{key}", None),
    ("POST", "/v1/keys/{key_id}/rotate"): ("POST", "/v1/keys/{key}/rotate", {}),
    ("POST", "/v1/keys/{key_id}/revoke"): ("POST", "/v1/keys/{key}/revoke", None),
    ("GET", "/v1/agents/{agent_id}"): ("GET", "/v1/agents/{agent}", None),
    ("DELETE", "/v1/agents/{agent_id}"): ("DELETE", "/v1/agents/{agent}", None),
    ("GET", "/v1/agents/{agent_id}/chain"): ("GET", "/v1/agents/{agent}/chain?verify=true", None),
    ("GET", "/v1/agents/{agent_id}/checkpoint"): ("GET", "/v1/agents/{agent}/checkpoint", None),
    ("GET", "/v1/agents/{agent_id}/proof/inclusion"): ("GET", "/v1/agents/{agent}/proof/inclusion?seq=1", None),
    ("GET", "/v1/agents/{agent_id}/proof/consistency"): ("GET", "/v1/agents/{agent}/proof/consistency?old=1", None),
    ("GET", "/v1/logs"): ("GET", "/v1/logs?agent={agent}", None),
    ("GET", "/v1/logs/export"): ("GET", "/v1/logs/export?agent={agent}", None),
    ("GET", "/v1/logs/stream"): ("GET", "/v1/logs/stream?agent={agent}", None),
    ("GET", "/v1/policies/{scope}"): ("GET", "/v1/policies/{agent}", None),
    ("PUT", "/v1/policies/{scope}"): ("PUT", "/v1/policies/{agent}", {"yaml": POLICY, "allow_removals": True}),
    ("DELETE", "/v1/policies/{scope}"): ("DELETE", "/v1/policies/{agent}", None),
    ("POST", "/v1/policies/{scope}/diff"): ("POST", "/v1/policies/{agent}/diff", {"yaml": POLICY}),
    ("GET", "/v1/policies/{scope}/versions"): ("GET", "/v1/policies/{agent}/versions", None),
    ("GET", "/v1/policies/{scope}/versions/{version}"): ("GET", "/v1/policies/{agent}/versions/1", None),
    ("GET", "/v1/approvals/{approval_id}"): ("GET", "/v1/approvals/{approval}", None),
    ("POST", "/v1/approvals/{approval_id}/approve"): ("POST", "/v1/approvals/{approval}/approve", {}),
    ("POST", "/v1/approvals/{approval_id}/deny"): ("POST", "/v1/approvals/{approval}/deny", {}),
    ("PUT", "/v1/users/{user_id}/role"): ("PUT", "/v1/users/{user}/role", {"role": "viewer"}),
    ("DELETE", "/v1/users/{user_id}"): ("DELETE", "/v1/users/{user}", None),
}
LISTS = {  # the other org's own view: none of the first org's data appears
    ("GET", "/v1/keys"),
    ("GET", "/v1/agents"),
    ("GET", "/v1/users"),
    ("GET", "/v1/logs/quarantine"),
    ("GET", "/v1/approvals"),
    ("GET", "/v1/auth/me"),
}
ELSEWHERE = {  # tried in dedicated tests below (agent endpoints, org-wide documents, people)
    ("GET", "/v1/policy"),
    ("POST", "/v1/logs/batch"),
    ("POST", "/v1/logs/checkpoint"),  # below, and test_transparency: an agent's checkpoint is of its own log
    ("POST", "/v1/approvals"),
    ("GET", "/v1/policies/{scope}"),
    ("POST", "/v1/agents/challenge"),
    ("POST", "/v1/agents/register"),
    ("POST", "/v1/users"),
    ("POST", "/v1/keys"),
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/password"),  # test_people_roles: one's own password and sessions, never another's
    ("GET", "/v1/auth/sessions"),
    ("POST", "/v1/auth/sessions/{session_id}/revoke"),
    ("POST", "/v1/auth/switch"),  # test_accounts_per_org: only to the organisations one's own log-in matched
}
NO_TENANT_DATA = {("GET", "/health"), ("GET", "/ready"), ("GET", "/v1/backend-key")}


@pytest.fixture
def victim(org, make_agent):
    """An organisation with an agent, records, quarantine, policies, an approval and keys."""
    agent = make_agent(org, "victim-bot", calls=6)
    records = agent.ledger.records()
    agent.ship(records)
    agent.ship([{**records[0], "sig": None, "seq": 99}])  # one quarantined record
    org.admin.put("/v1/policies/org", json={"yaml": POLICY})
    org.admin.put(f"/v1/policies/{agent.id}", json={"yaml": POLICY})
    approval = agent.client.post("/v1/approvals", json={"call": "c1", "tool": "send_email", "args_digest": DIGEST})
    key = org.admin.post("/v1/keys", json={"kind": "admin", "name": "victim-key"}).json()
    user = org.session.get("/v1/auth/me").json()["user"]["id"]
    ids = {"agent": agent.id, "approval": approval.json()["id"], "key": key["id"], "user": user}
    return org, agent, ids, records


def snapshot(org, agent):
    admin = org.admin
    return {
        "keys": [(k["id"], k["status"], k["expires_at"]) for k in admin.get("/v1/keys").json()],
        "agent": admin.get(f"/v1/agents/{agent.id}").json(),
        "records": admin.get("/v1/logs/export", params={"agent": agent.id}).content,
        "policy": admin.get(f"/v1/policies/{agent.id}/versions").json(),
        "org_policy": admin.get("/v1/policies/org/versions").json(),
        "approvals": admin.get("/v1/approvals").json(),
        "quarantine": admin.get("/v1/logs/quarantine").json(),
        "checkpoint": admin.get(f"/v1/agents/{agent.id}/checkpoint").json(),
        "users": admin.get("/v1/users").json(),
    }


def test_every_operation_is_covered(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert operations == set(BY_ID) | LISTS | ELSEWHERE | NO_TENANT_DATA


def test_ids_of_another_org_are_not_found_and_nothing_changes(victim, other_org):
    org, agent, ids, _ = victim
    before = snapshot(org, agent)
    for caller in (other_org.admin, other_org.session):
        for method, template, body in BY_ID.values():
            path = template.format(**ids)
            response = caller.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.status_code, response.text)
    assert snapshot(org, agent) == before


def test_lists_show_only_the_callers_org(victim, other_org):
    org, agent, ids, records = victim
    for method, path in sorted(LISTS):
        text = other_org.admin.request(method, path).text if path != "/v1/auth/me" else other_org.session.get(path).text
        for secret in (ids["agent"], ids["approval"], ids["key"], org.id, org.email, records[0]["hash"]):
            assert secret not in text, (path, secret)
    assert other_org.admin.get("/v1/logs").json()["items"] == []
    assert other_org.admin.get("/v1/policies/org").json()["error"]["code"] == "policy_missing"
    assert other_org.admin.get("/v1/policies/org/versions").json() == []


def test_agents_of_another_org_see_and_change_nothing(victim, other_org, make_agent):
    org, agent, ids, records = victim
    before = snapshot(org, agent)
    intruder = make_agent(other_org, "victim-bot")  # same name, other org: a different agent
    assert intruder.id != agent.id
    assert intruder.client.get("/v1/policy").json()["error"]["code"] == "policy_missing"
    assert intruder.client.get("/v1/approvals").json()["items"] == []
    assert intruder.client.get(f"/v1/approvals/{ids['approval']}").status_code == 404
    shipped = intruder.ship(records).json()["results"]
    assert shipped[0]["code"] == "wrong_key" and {r["status"] for r in shipped} == {"refused"}
    victims_checkpoint = sign_checkpoint(
        Checkpoint(agent_origin(records[0]["key"]), len(records), bytes(32)), agent.ledger.identity
    )
    assert intruder.client.post("/v1/logs/checkpoint", json={"note": victims_checkpoint}).status_code in (409, 422)
    created = intruder.client.post("/v1/approvals", json={"call": "c1", "tool": "send_email", "args_digest": DIGEST})
    assert created.status_code == 201 and created.json()["id"] != ids["approval"]
    # The victim agent's own key, registered in the other org too, is a separate agent there.
    twin = other_org.register(agent.ledger.identity, "twin")
    assert twin["id"] != agent.id
    with other_org.agent_client(agent.ledger.identity) as client:
        assert [a["call"] for a in client.get("/v1/approvals").json()["items"]] == []
    assert snapshot(org, agent) == before


def test_keys_and_people_are_created_in_the_callers_org_only(victim, other_org):
    org, agent, ids, _ = victim
    made = other_org.admin.post("/v1/keys", json={"kind": "admin", "name": "mine"}).json()
    assert made["id"] not in {k["id"] for k in org.admin.get("/v1/keys").json()}
    other_org.admin.post("/v1/users", json={"email": "someone-else@example.com", "password": "long password 123"})
    assert "someone-else@example.com" not in org.admin.get("/v1/users").text
    with httpx.Client(base_url=org.server.url, headers={"Authorization": f"Bearer {made['key']}"}) as client:
        assert client.get(f"/v1/agents/{ids['agent']}").status_code == 404
