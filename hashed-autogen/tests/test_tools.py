"""`guard_tools` on real `AssistantAgent` runs (AutoGen's replay model client): what runs, what the model sees,
and what the ledger holds."""

from __future__ import annotations

import asyncio

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core import CancellationToken
from autogen_core.tools import FunctionTool

from hashed import PolicyDenied
from hashed_autogen import HashedTool, guard_tools


def agent(name, client, tools, guarded, **kwargs):
    return AssistantAgent(name, model_client=client, tools=guard_tools(tools, guarded, agent=name), **kwargs)


def test_guard_tools_keeps_name_description_and_schema(toolbox):
    tools = toolbox.tools()
    wrapped = guard_tools(tools)
    assert [(t.name, t.description, t.schema) for t in wrapped] == [(t.name, t.description, t.schema) for t in tools]
    assert all(isinstance(t, HashedTool) for t in wrapped)
    assert guard_tools(wrapped) == wrapped  # never wrapped twice


def test_allowed_call_runs_once_and_is_recorded(guarded, toolbox, kit):
    bot = agent("billing", kit.replay([("transfer_money", {"to": "acct-9", "amount": 50})]), toolbox.tools(), guarded)
    task = kit.run(bot.run(task="pay acct-9"))
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 50.0})]
    [result] = kit.results(task).values()
    assert (result.content, result.is_error) == ("transfer_money done", False)
    decision, outcome = kit.records(guarded)
    assert (decision.body["effect"], decision.body["rule"], decision.body["agent"]) == ("allow", "transfers", "billing")
    assert (decision.body["framework"], decision.body["call_id"]) == ("autogen", "c0")
    assert decision.body["args"] == {"to": "acct-9", "amount": 50.0}
    assert (outcome.kind, outcome.body["status"], outcome.body["call"]) == ("outcome", "ok", decision.body["call"])
    kit.assert_verifies(guarded)


def test_denied_call_never_runs_and_the_model_sees_the_refusal(guarded, toolbox, kit):
    bot = agent("ops", kit.replay([("delete_file", {"path": "/etc/passwd"})]), toolbox.tools(), guarded)
    task = kit.run(bot.run(task="tidy up"))
    assert toolbox.executed == []
    [result] = kit.results(task).values()
    assert result.is_error
    assert result.content == "delete_file denied by policy (rule no-delete): Agents never delete files."
    [decision] = kit.records(guarded)
    assert (decision.body["effect"], decision.body["agent"]) == ("deny", "ops")
    kit.assert_verifies(guarded)


def test_over_the_limit_is_denied(guarded, toolbox, kit):
    bot = agent(
        "billing", kit.replay([("transfer_money", {"to": "acct-9", "amount": "5000"})]), toolbox.tools(), guarded
    )
    task = kit.run(bot.run(task="pay"))
    assert toolbox.executed == []
    [decision] = kit.decisions(guarded)
    assert decision.body["args"] == {"to": "acct-9", "amount": 5000.0}  # as the tool's args model reads it
    assert "over the limit of 1000" in decision.body["reason"]
    assert "over the limit of 1000" in next(iter(kit.results(task).values())).content


def test_a_sum_window_denies_what_would_overshoot_it(guarded, toolbox, kit):
    turns = [[("transfer_money", {"to": "acct-9", "amount": amount})] for amount in (700, 700, 200)]
    bot = agent("billing", kit.replay(*turns), toolbox.tools(), guarded, max_tool_iterations=3)
    task = kit.run(bot.run(task="pay three times"))
    assert [args["amount"] for _, args in toolbox.executed] == [700.0, 700.0]
    effects = [(d.body["effect"], d.body["args"]["amount"]) for d in kit.decisions(guarded)]
    assert effects == [("allow", 700.0), ("allow", 700.0), ("deny", 200.0)]
    assert "c2" in kit.results(task) and kit.results(task)["c2"].is_error
    kit.assert_verifies(guarded)


def test_pending_approval_blocks_until_a_person_approves(guarded, toolbox, kit):
    first = agent(
        "billing", kit.replay([("transfer_money", {"to": "acct-9", "amount": 900})]), toolbox.tools(), guarded
    )
    task = kit.run(first.run(task="pay"))
    assert toolbox.executed == []
    [result] = kit.results(task).values()
    assert result.is_error and "waiting for human approval" in result.content
    [request] = guarded.approvals.list("pending")
    guarded.approve(request.id, by="alice", comment="known payee")
    again = agent(
        "billing", kit.replay([("transfer_money", {"to": "acct-9", "amount": 900})]), toolbox.tools(), guarded
    )
    kit.run(again.run(task="pay"))
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 900.0})]
    kinds = [(r.kind, r.body.get("effect") or r.body.get("verdict")) for r in kit.records(guarded)]
    assert kinds == [("decision", "pending"), ("approval", "approved"), ("decision", "allow"), ("outcome", None)]
    kit.assert_verifies(guarded)


def test_a_tool_error_reaches_the_model_and_is_recorded_with_its_type(guarded, toolbox, kit):
    toolbox.raises = ValueError("bank is down")
    bot = agent("billing", kit.replay([("transfer_money", {"to": "acct-9", "amount": 5})]), toolbox.tools(), guarded)
    task = kit.run(bot.run(task="pay"))
    [result] = kit.results(task).values()
    assert (result.content, result.is_error) == ("bank is down", True)
    outcome = kit.records(guarded)[-1]
    assert (outcome.kind, outcome.body["status"], outcome.body["error"]) == (
        "outcome",
        "error",
        "ValueError: bank is down",
    )


def test_parallel_tool_calls_are_each_decided_and_recorded(guarded, toolbox, kit):
    calls = [
        ("read_file", {"path": "/srv/a"}),
        ("delete_file", {"path": "/srv/a"}),
        ("transfer_money", {"to": "acct-1", "amount": 10}),
    ]
    bot = agent("ops", kit.replay(calls), toolbox.tools(), guarded)
    task = kit.run(bot.run(task="do three things"))
    assert sorted(name for name, _ in toolbox.executed) == ["read_file", "transfer_money"]
    assert {k: r.is_error for k, r in kit.results(task).items()} == {"c0": False, "c1": True, "c2": False}
    by_call = {d.body["call_id"]: (d.body["tool"], d.body["effect"]) for d in kit.decisions(guarded)}
    assert by_call == {"c0": ("read_file", "allow"), "c1": ("delete_file", "deny"), "c2": ("transfer_money", "allow")}
    assert kit.decisions(guarded)[0].body["args"] in ({"path": "/srv/a", "encoding": "utf-8"}, {"path": "/srv/a"})
    kit.assert_verifies(guarded)


def test_an_omitted_default_is_what_policy_sees(guarded, toolbox, kit):
    bot = agent("ops", kit.replay([("read_file", {"path": "/srv/a"})]), toolbox.tools(), guarded)
    kit.run(bot.run(task="read"))
    [decision] = kit.decisions(guarded)
    assert decision.body["args"] == {"path": "/srv/a", "encoding": "utf-8"}


def test_arguments_the_tool_cannot_read_are_refused_and_recorded(guarded, toolbox, kit):
    bot = agent("billing", kit.replay([("transfer_money", {"to": "acct-9"})]), toolbox.tools(), guarded)
    task = kit.run(bot.run(task="pay"))
    assert toolbox.executed == []
    [decision] = kit.decisions(guarded)
    assert decision.body["effect"] == "deny"
    assert "could not be read as transfer_money's parameters" in decision.body["reason"]
    assert next(iter(kit.results(task).values())).is_error


async def test_a_direct_call_raises_policy_denied_and_never_runs(guarded, toolbox, kit):
    delete = guard_tools(toolbox.tools(), guarded)[1]
    with pytest.raises(PolicyDenied, match="Agents never delete files"):
        await asyncio.wait_for(delete.run_json({"path": "/x"}, CancellationToken(), call_id="d1"), 30)
    with pytest.raises(PolicyDenied):  # `run` on a validated model is guarded too
        await asyncio.wait_for(delete.run(delete.args_type()(path="/x"), CancellationToken()), 30)
    assert toolbox.executed == []
    assert [d.body["effect"] for d in kit.decisions(guarded)] == ["deny", "deny"]


async def test_a_tool_that_calls_a_guarded_tool_has_that_call_decided_too(guarded, toolbox, kit):
    delete = guard_tools(toolbox.tools(), guarded)[1]

    async def read_file(path: str) -> str:
        toolbox.executed.append(("read_file", {"path": path}))
        try:
            return str(await delete.run_json({"path": path}, CancellationToken(), call_id="c0"))  # same call id
        except PolicyDenied as exc:
            return f"could not delete: {exc}"

    tools = [FunctionTool(read_file, description="Read, then delete.")]
    bot = agent("ops", kit.replay([("read_file", {"path": "/srv/a"})]), tools, guarded)
    task = await asyncio.wait_for(bot.run(task="go"), 30)
    assert toolbox.executed == [("read_file", {"path": "/srv/a"})]
    assert [(d.body["tool"], d.body["effect"]) for d in kit.decisions(guarded)] == [
        ("read_file", "allow"),
        ("delete_file", "deny"),
    ]
    assert "could not delete: delete_file denied by policy" in next(iter(kit.results(task).values())).content
