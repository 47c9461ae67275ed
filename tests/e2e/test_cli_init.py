"""`hashed init`, then `hashed init --connect` (issue #16): connecting a project made earlier keeps its key."""

from __future__ import annotations

import pytest

from hashed import Hashed, HashedSettings
from hashed.identity import read_public_key

pytestmark = pytest.mark.e2e


def test_connecting_a_project_made_earlier_keeps_its_key_and_the_agent_ships_with_it(cli, org):
    cli("init", "--agent", "billing-bot")
    key = read_public_key(cli.home / "agent.key")
    result = cli("init", "--connect", code=3)  # not logged in yet: says so, and changes nothing
    assert "error: --connect needs a backend login" in result.output and "→ hashed login --url URL" in result.output
    assert "backend_url" not in (cli.home / "config.toml").read_text()

    cli("login", "--url", org.url, "--key", org.admin_key)
    result = cli("init", "--connect")
    assert "kept the agent key" in result.output and f"connected to {org.url}" in result.output
    assert read_public_key(cli.home / "agent.key") == key
    settings = HashedSettings.load(cli.home)
    assert (settings.agent, settings.backend_url) == ("billing-bot", org.url)

    with Hashed(home=cli.home) as hashed:
        assert hashed.guard("read_file")(lambda path: "text")("a.txt") == "text"
    [agent] = org.admin.get("/v1/agents").json()
    assert (agent["name"], agent["public_key"]) == ("billing-bot", key)

    again = cli("init", "--connect")  # and again: one backend_url, a fresh API key in place of the old one
    assert "replaces the key api.key held" in again.output
    assert (cli.home / "config.toml").read_text().count("backend_url") == 1
    assert HashedSettings.load(cli.home).backend_url == org.url
