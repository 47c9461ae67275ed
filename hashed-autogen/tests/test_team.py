"""A `RoundRobinGroupChat` of two agents guarded under different policies: each call decided under its own."""

from __future__ import annotations

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

from hashed.testing import make_hashed
from hashed_autogen import guard_tools, instrument

PAYER = """
version: 1
default: deny
rules: [{id: pay, tools: [transfer_money], effect: allow, limits: {amount: {max: 1000}}}]
"""
AUDITOR = """
version: 1
default: deny
rules: [{id: read-only, tools: [read_file], effect: allow}]
"""
BY_AGENT = """
version: 1
default: deny
rules:
  - {id: billing-pays, tools: [transfer_money], agents: ["billing_*"], effect: allow}
  - {id: anyone-reads, tools: [read_file], effect: allow}
"""


def test_two_agents_each_under_its_own_policy(tmp_path, toolbox, kit):
    with (
        make_hashed(tmp_path / "payer", policy=PAYER) as payer,
        make_hashed(tmp_path / "auditor", policy=AUDITOR) as auditor,
    ):
        pay = kit.replay([("transfer_money", {"to": "acct-9", "amount": 50})], ids="p")
        audit = kit.replay(
            [("transfer_money", {"to": "acct-6", "amount": 50}), ("read_file", {"path": "/ledger"})], ids="a"
        )
        team = RoundRobinGroupChat(
            [
                AssistantAgent("payer", model_client=pay, tools=guard_tools(toolbox.tools(), payer, agent="payer")),
                AssistantAgent(
                    "auditor", model_client=audit, tools=guard_tools(toolbox.tools(), auditor, agent="auditor")
                ),
            ],
            termination_condition=MaxMessageTermination(3),
        )
        task = kit.run(team.run(task="pay acct-9, then audit"))
        assert [(name, args["to"]) for name, args in toolbox.executed if name == "transfer_money"] == [
            ("transfer_money", "acct-9")
        ]
        assert ("read_file", {"path": "/ledger", "encoding": "utf-8"}) in toolbox.executed
        got = kit.results(task)
        assert {k: r.is_error for k, r in got.items()} == {"p0": False, "a0": True, "a1": False}
        assert got["a0"].content.startswith("transfer_money denied by policy")
        assert [(d.body["agent"], d.body["tool"], d.body["effect"]) for d in kit.decisions(payer)] == [
            ("payer", "transfer_money", "allow")
        ]
        assert sorted((d.body["agent"], d.body["tool"], d.body["effect"]) for d in kit.decisions(auditor)) == [
            ("auditor", "read_file", "allow"),
            ("auditor", "transfer_money", "deny"),
        ]
        kit.assert_verifies(payer)
        kit.assert_verifies(auditor)


def test_zero_code_gives_each_agent_its_own_name(tmp_path, toolbox, kit):
    with make_hashed(tmp_path / "h", policy=BY_AGENT) as hashed:
        instrument(hashed)
        team = RoundRobinGroupChat(
            [
                AssistantAgent(
                    "billing_bot",
                    model_client=kit.replay([("transfer_money", {"to": "a", "amount": 5})]),
                    tools=toolbox.tools(),
                ),
                AssistantAgent(
                    "helper",
                    model_client=kit.replay([("transfer_money", {"to": "b", "amount": 5})]),
                    tools=toolbox.tools(),
                ),
            ],
            termination_condition=MaxMessageTermination(3),
        )
        kit.run(team.run(task="pay"))
        assert [args["to"] for _, args in toolbox.executed] == ["a"]
        decided = [(d.body["agent"], d.body["effect"], d.body["rule"]) for d in kit.decisions(hashed)]
        assert decided == [("billing_bot", "allow", "billing-pays"), ("helper", "deny", None)]
        kit.assert_verifies(hashed)
