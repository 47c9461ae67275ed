"""`hashed keys …` and `hashed agent …` against a real backend, with real agents shipping real records."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_keys_create_list_rotate_revoke(logged_in, org):
    cli = logged_in
    result = cli("keys", "create", "--kind", "agent", "--name", "ci-agent", "--expires-in-days", "7")
    assert "created agent key 'ci-agent'" in result.output and "hashed_agent_" in result.output
    assert "only time the key is shown" in result.output and "HASHED_API_KEY" in result.output
    created = json.loads(cli("keys", "create", "--name", "script", "--json").output)
    assert created["kind"] == "admin" and created["key"].startswith("hashed_admin_")

    table = cli("keys", "list").output
    assert "ci-agent" in table and "script" in table and "active" in table
    listed = {k["name"]: k for k in json.loads(cli("keys", "list", "--json").output)}
    assert set(listed) == {"ops", "fleet", "ci-agent", "script"}
    assert all("key" not in k for k in listed.values())

    rotated = json.loads(cli("keys", "rotate", created["id"], "--overlap", "0", "--json").output)
    assert rotated["new"]["name"] == "script" and rotated["new"]["key"] != created["key"]
    old = httpx.get(f"{org.url}/v1/keys", headers={"Authorization": f"Bearer {created['key']}"})
    assert old.status_code == 401 and old.json()["error"]["code"] == "key_expired"
    new = httpx.get(f"{org.url}/v1/keys", headers={"Authorization": f"Bearer {rotated['new']['key']}"})
    assert new.status_code == 200

    result = cli("keys", "rotate", rotated["new"]["id"], "--overlap", "2h")
    assert "the old key" in result.output and "stops working at" in result.output

    result = cli("keys", "revoke", listed["ci-agent"]["id"])
    assert "revoked agent key 'ci-agent'" in result.output
    active = json.loads(cli("keys", "list", "--active", "--json").output)
    assert "ci-agent" not in {k["name"] for k in active}
    result = cli("keys", "revoke", "key_doesnotexist", code=1)
    assert "key_not_found" in result.output and "hashed keys list" in result.output
    result = cli("keys", "rotate", listed["ci-agent"]["id"], code=1)
    assert "key_inactive" in result.output


def test_keys_create_rejects_an_unknown_kind(logged_in):
    result = logged_in("keys", "create", "--kind", "root", code=2)
    assert "admin or agent" in result.output


def test_agent_create_prints_the_environment_and_the_agent_registers_itself(logged_in, org, make_agent):
    cli = logged_in
    result = cli("agent", "create", "billing-bot")
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert lines["HASHED_BACKEND_URL"] == org.url and lines["HASHED_AGENT"] == "billing-bot"
    assert lines["HASHED_API_KEY"].startswith("hashed_agent_")
    assert "registers itself" in result.output and "shown only now" in result.output
    assert "no agents yet" in cli("agent", "list").output

    agent = make_agent("billing-bot", api_key=lines["HASHED_API_KEY"])
    agent.register()
    agent.activity(5)
    agent.ship()
    [listed] = json.loads(cli("agent", "list", "--json").output)
    assert listed["name"] == "billing-bot" and listed["public_key"] == agent.identity.public_key
    assert listed["head"]["seq"] == 9  # five decisions, four outcomes (the delete is denied: no outcome)
    table = cli("agent", "list").output
    assert "billing-bot" in table and "active" in table

    shown = json.loads(cli("agent", "show", "billing-bot", "--verify", "--json").output)
    assert shown["verified_seq"] == 9 and shown["error"] is None and shown["keys"] == [agent.identity.public_key]
    assert "every record verifies" in cli("agent", "show", listed["id"], "--verify").output


def test_agent_delete_disables_it_and_asks_first(logged_in, make_agent):
    cli = logged_in
    agent = make_agent("doomed-bot")
    agent.register()
    result = cli("agent", "delete", "doomed-bot", code=2)
    assert "needs confirmation" in result.output and "--yes" in result.output
    result = cli("agent", "delete", "doomed-bot", "--yes")
    assert "disabled agent doomed-bot" in result.output
    [listed] = json.loads(cli("agent", "list", "--json").output)
    assert listed["disabled_at"] is not None
    agent.activity(1)
    with pytest.raises(Exception, match="agent_disabled"):
        agent.ship()
    result = cli("agent", "delete", "no-such-bot", "--yes", code=1)
    assert "agent_not_found" in result.output and "hashed agent list" in result.output


def test_agent_rotate_key_rotates_the_local_key_and_the_backend_learns_it(cli, org, monkeypatch):
    cli("init", "--agent", "rotating-bot")
    monkeypatch.setenv("HASHED_BACKEND_URL", org.url)
    monkeypatch.setenv("HASHED_API_KEY", org.agent_key)
    monkeypatch.setenv("HASHED_SHIP_INTERVAL", "0.05")
    before = json.loads(cli("status", "--json").output)["public_key"]

    # In its own process: opening Hashed with a backend that does not know the agent yet leaks the first policy
    # fetch's client in hashed._connect (a ResourceWarning, which this suite turns into an error).
    rotated = json.loads(cli.process("agent", "rotate-key", "--json").stdout)
    assert rotated["old_key"] == before and rotated["new_key"] != before
    assert json.loads(cli("status", "--json").output)["public_key"] == rotated["new_key"]
    assert "records verified" in cli("verify").output

    output = cli.process("agent", "rotate-key").stdout
    assert "rotated the key of agent rotating-bot" in output
    assert "learns the new key from that record" in output

    cli("login", "--url", org.url, "--key", org.admin_key)
    chain = json.loads(cli("agent", "show", "rotating-bot", "--json").output)
    assert chain["keys"][:2] == [rotated["old_key"], rotated["new_key"]]
    assert len(chain["keys"]) == 3 and chain["gaps"] == []
    status = json.loads(cli("status", "--json").output)
    assert status["unshipped"] == 0 and status["backend_reachable"] is True
