"""`hashed policy diff | push | pull` against a real backend, and the policy an agent is then served."""

from __future__ import annotations

import json

import pytest

from hashed.cli import _remote_policy

from .conftest import POLICY

pytestmark = pytest.mark.e2e

WITHOUT_DELETE = POLICY.split("  - id: never-delete")[0]
WITH_LIMIT_CHANGED = POLICY.replace("amount: {max: 1000}", "amount: {max: 500}")


@pytest.fixture
def policy_file(logged_in):
    path = logged_in.cwd / "policy.yaml"
    path.write_text(POLICY)
    return path


def test_push_then_pull_returns_the_same_document(logged_in, policy_file, org, make_agent):
    cli = logged_in
    result = cli("policy", "push", str(policy_file), "-m", "first")
    assert "+ rule small-transfers" in result.output and "+ rule never-delete" in result.output
    assert "pushed version 1 of org" in result.output
    assert cli("policy", "pull").stdout == POLICY
    out = cli.cwd / "pulled.yaml"
    cli("policy", "pull", "-o", str(out))
    assert out.read_text() == POLICY
    pulled = json.loads(cli("policy", "pull", "--json").output)
    assert pulled["version"] == 1 and pulled["comment"] == "first" and pulled["created_by"] == "key:ops"

    agent = make_agent("billing-bot")  # what the agent is served is what was pushed
    agent.register()
    served = agent.client.policy(None)
    assert served is not None and served.yaml == POLICY and served.version == 1

    result = cli("policy", "push", str(policy_file))
    assert "same rules and settings" in result.output and "nothing to push" in result.output


def test_diff_shows_changes_rule_by_rule(logged_in, policy_file):
    cli = logged_in
    result = cli("policy", "diff", str(policy_file))
    assert "nothing yet" in result.output and "+ rule email" in result.output
    cli("policy", "push", str(policy_file))
    policy_file.write_text(WITH_LIMIT_CHANGED.replace("default: deny", "default: allow"))
    result = cli("policy", "diff", str(policy_file), "--text")
    assert "~ rule small-transfers (limits)" in result.output
    assert "~ default: 'deny' → 'allow'" in result.output
    assert "-      amount: {max: 1000}" in result.output and "+      amount: {max: 500}" in result.output
    changes = json.loads(cli("policy", "diff", str(policy_file), "--json").output)
    assert changes["changed"] == [{"id": "small-transfers", "fields": ["limits"]}] and changes["current_version"] == 1
    cli("policy", "diff", str(policy_file), "--exit-code", code=1)
    policy_file.write_text(POLICY)
    cli("policy", "diff", str(policy_file), "--exit-code")


def test_removing_rules_needs_yes_or_a_confirmation(logged_in, policy_file, monkeypatch):
    cli = logged_in
    cli("policy", "push", str(policy_file))
    policy_file.write_text(WITHOUT_DELETE)
    result = cli("policy", "push", str(policy_file), code=1)
    assert "- rule never-delete" in result.output
    assert "removes rules never-delete; nothing was pushed" in result.output and "--yes" in result.output
    assert json.loads(cli("policy", "pull", "--json").output)["version"] == 1

    monkeypatch.setattr(_remote_policy, "can_ask", lambda: True)
    result = cli("policy", "push", str(policy_file), input="n\n", code=1)
    assert "remove rules never-delete?" in result.output and "nothing pushed" in result.output
    assert json.loads(cli("policy", "pull", "--json").output)["version"] == 1
    result = cli("policy", "push", str(policy_file), input="y\n")
    assert "pushed version 2" in result.output

    policy_file.write_text(POLICY)
    cli("policy", "push", str(policy_file))
    policy_file.write_text(WITHOUT_DELETE)
    monkeypatch.setattr(_remote_policy, "can_ask", lambda: False)
    pushed = json.loads(cli("policy", "push", str(policy_file), "--yes", "--json").output)
    assert pushed["diff"]["removed"] == ["never-delete"] and pushed["version"]["version"] == 4
    assert cli("policy", "pull").stdout == WITHOUT_DELETE
    assert cli("policy", "pull", "--version", "1").stdout == POLICY


def test_an_agent_document_replaces_the_org_one_for_that_agent(logged_in, policy_file, make_agent):
    cli = logged_in
    agent = make_agent("billing-bot")
    agent.register()
    cli("policy", "push", str(policy_file))
    result = cli("policy", "pull", "--agent", "billing-bot", code=1)
    assert "no policy document of its own" in result.output and "hashed policy pull" in result.output
    policy_file.write_text(WITH_LIMIT_CHANGED)
    result = cli("policy", "push", str(policy_file), "--agent", "billing-bot")
    assert "pushed version 1" in result.output
    assert cli("policy", "pull", "--agent", "billing-bot").stdout == WITH_LIMIT_CHANGED
    served = agent.client.policy(None)
    assert served is not None and served.source == "agent" and served.yaml == WITH_LIMIT_CHANGED
    result = cli("policy", "push", str(policy_file), "--agent", "no-such-bot", code=1)
    assert "agent_not_found" in result.output


def test_an_invalid_policy_is_refused_before_it_is_sent(logged_in, policy_file):
    cli = logged_in
    policy_file.write_text(POLICY.replace("effect: allow", "effect: maybe", 1))
    result = cli("policy", "push", str(policy_file), code=1)
    assert "is not a valid policy" in result.output and "effect" in result.output
    assert "hashed policy validate" in result.output
    result = cli("policy", "pull", code=1)
    assert "policy_missing" in result.output and "hashed policy push" in result.output
