"""Policy documents: core validation, versions, diff, guarded removals, agent override, ETag."""

from __future__ import annotations

from hashed.policy import parse_policy, policy_hash

ORG_POLICY = """\
version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
"""

CHANGED = """\
version: 1
default: allow   # layout and comments do not change the hash; these edits do
mode: shadow
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 500}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
  - id: email
    tools: [send_email]
    effect: allow
"""

REMOVES = """\
version: 1
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
"""


def code(response):
    return response.json()["error"]["code"]


def push(org, text, scope="org", **extra):
    return org.admin.put(f"/v1/policies/{scope}", json={"yaml": text, **extra})


def test_push_validates_with_the_core_and_keeps_versions(org):
    first = push(org, ORG_POLICY, comment="initial")
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1 and first.json()["hash"] == policy_hash(parse_policy(ORG_POLICY))
    assert first.json()["created_by"] == "key:ops"
    second = push(org, CHANGED)
    assert second.json()["version"] == 2
    versions = org.admin.get("/v1/policies/org/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["yaml"] == ORG_POLICY and versions[1]["comment"] == "initial"
    assert org.admin.get("/v1/policies/org/versions/1").json()["yaml"] == ORG_POLICY
    assert org.admin.get("/v1/policies/org").json()["version"] == 2


def test_pushing_the_same_text_again_changes_nothing(org):
    push(org, ORG_POLICY)
    again = push(org, ORG_POLICY)
    assert again.status_code == 200 and again.json()["version"] == 1


def test_invalid_policy_is_422_with_the_core_issues(org):
    bad = "version: 1\nrules:\n  - id: r1\n    tool: send_email\n    effect: allow\n"
    response = push(org, bad)
    assert response.status_code == 422 and code(response) == "policy_invalid"
    issues = response.json()["error"]["details"]
    assert {"line": 4, "field": "rules[0].tool", "message": "unknown field (did you mean 'tools'?)"} in issues
    not_yaml = push(org, "rules: [")
    assert code(not_yaml) == "policy_invalid" and "not valid YAML" in not_yaml.json()["error"]["message"]
    assert code(org.admin.get("/v1/policies/org")) == "policy_missing"


def test_diff_shows_rules_and_settings_that_change(org):
    push(org, ORG_POLICY)
    diff = org.admin.post("/v1/policies/org/diff", json={"yaml": CHANGED}).json()
    assert diff["added"] == ["email"] and diff["removed"] == []
    assert diff["changed"] == [{"id": "small-transfers", "fields": ["limits"]}]
    assert diff["settings"] == {
        "default": {"before": "deny", "after": "allow"},
        "mode": {"before": "enforce", "after": "shadow"},
    }
    assert diff["current_version"] == 1 and diff["unchanged"] is False
    same = org.admin.post("/v1/policies/org/diff", json={"yaml": ORG_POLICY + "\n# a comment\n"}).json()
    assert same["unchanged"] is True and same["new_hash"] == same["current_hash"]


def test_push_that_removes_rules_needs_allow_removals(org):
    push(org, ORG_POLICY)
    refused = push(org, REMOVES)
    assert refused.status_code == 409 and code(refused) == "rules_removed"
    assert refused.json()["error"]["details"]["removed"] == ["never-delete"]
    assert org.admin.get("/v1/policies/org").json()["version"] == 1
    accepted = push(org, REMOVES, allow_removals=True)
    assert accepted.status_code == 201 and accepted.json()["version"] == 2


def test_base_version_guards_against_lost_updates(org):
    push(org, ORG_POLICY)
    stale = push(org, CHANGED, base_version=0)
    assert stale.status_code == 409 and code(stale) == "version_conflict"
    assert push(org, CHANGED, base_version=1).status_code == 201


def test_agent_gets_the_org_policy_with_etag_and_304(org, make_agent):
    agent = make_agent(org)
    assert code(agent.client.get("/v1/policy")) == "policy_missing"
    push(org, ORG_POLICY)
    response = agent.client.get("/v1/policy")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "org" and body["yaml"] == ORG_POLICY
    assert response.headers["ETag"] == f'"{policy_hash(parse_policy(ORG_POLICY))}"' == f'"{body["hash"]}"'
    cached = agent.client.get("/v1/policy", headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""
    push(org, CHANGED)
    fresh = agent.client.get("/v1/policy", headers={"If-None-Match": response.headers["ETag"]})
    assert fresh.status_code == 200 and fresh.json()["yaml"] == CHANGED


def test_agent_document_replaces_the_org_document_entirely(org, make_agent):
    agent, other = make_agent(org, "alice"), make_agent(org, "bob")
    push(org, ORG_POLICY)
    own = push(org, REMOVES, scope=agent.id)
    assert own.status_code == 201 and own.json()["scope"] == agent.id
    mine = agent.client.get("/v1/policy").json()
    assert mine["source"] == "agent" and mine["yaml"] == REMOVES
    assert other.client.get("/v1/policy").json()["source"] == "org"
    removed = org.admin.delete(f"/v1/policies/{agent.id}")
    assert removed.status_code == 200 and removed.json()["yaml"] is None and removed.json()["version"] == 2
    assert agent.client.get("/v1/policy").json()["source"] == "org"
    assert len(org.admin.get(f"/v1/policies/{agent.id}/versions").json()) == 2


def test_agents_never_write_policy(org, make_agent):
    agent = make_agent(org)
    assert code(agent.client.put("/v1/policies/org", json={"yaml": ORG_POLICY})) == "forbidden"
    assert code(agent.client.put(f"/v1/policies/{agent.id}", json={"yaml": ORG_POLICY})) == "forbidden"
    assert code(agent.client.post("/v1/policies/org/diff", json={"yaml": ORG_POLICY})) == "forbidden"


def test_unknown_scope_is_404(org):
    assert code(push(org, ORG_POLICY, scope="agt_nope")) == "agent_not_found"
