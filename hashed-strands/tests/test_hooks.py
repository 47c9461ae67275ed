"""`HashedHookProvider` on real Strands agent loops: every case checks what ran, what the model saw, and the ledger."""

from __future__ import annotations

import asyncio

import pytest
from strands import Agent

from hashed import PolicyDenied
from hashed_strands import HashedHookProvider, respond


def test_allowed_call_runs_and_its_outcome_is_linked_by_the_tool_use_id(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 120})])
    assert str(agent("pay")).strip() == "done"
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 120.0})]
    assert kit.text(kit.tool_results(agent)["tu-0"]) == "transfer_money done"
    decision, outcome = kit.records(guarded)
    assert (decision.kind, decision.body["effect"], decision.body["rule"]) == ("decision", "allow", "transfers")
    assert (decision.body["call_id"], decision.body["framework"], decision.body["agent"]) == (
        "tu-0",
        "strands",
        "billing-bot",
    )
    assert decision.body["args"] == {"to": "acct-9", "amount": 120}
    assert (outcome.kind, outcome.body["call"], outcome.body["status"]) == ("outcome", decision.body["call"], "ok")
    kit.assert_verifies(guarded)


def test_denied_call_never_runs_and_the_model_sees_the_refusal(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("delete_file", {"path": "/etc/passwd"})])
    agent("tidy up")
    assert toolbox.executed == []
    result = kit.tool_results(agent)["tu-0"]
    assert result["status"] == "error"
    assert kit.text(result) == "delete_file denied by policy (rule no-delete): Agents never delete files."
    assert agent.model.seen[-1][-1]["content"][0]["toolResult"] == result  # what the model was shown next
    [decision] = kit.records(guarded)
    assert (decision.body["effect"], decision.body["call_id"]) == ("deny", "tu-0")
    kit.assert_verifies(guarded)


def test_over_the_limit_is_denied_with_the_reason(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": "5000"})])
    agent("pay")
    assert toolbox.executed == []
    assert "amount=5000.0 is over the limit of 1000" in kit.text(kit.tool_results(agent)["tu-0"])
    [decision] = kit.records(guarded)
    assert decision.body["args"] == {"to": "acct-9", "amount": 5000}  # the string the model sent, as the body gets it


def test_a_daily_sum_window_denies_what_would_go_over_it(guarded, toolbox, kit, hashed_clock):
    agent = kit.agent(
        guarded,
        toolbox,
        [("transfer_money", {"to": "acct-1", "amount": 400})],
        [("transfer_money", {"to": "acct-2", "amount": 500})],
        [("transfer_money", {"to": "acct-3", "amount": 450})],
        [("transfer_money", {"to": "acct-4", "amount": 300})],
    )
    agent("pay everyone")
    assert [args["to"] for _, args in toolbox.executed] == ["acct-1", "acct-2", "acct-3"]
    assert "window" in kit.text(kit.tool_results(agent)["tu-3"])
    effects = [(r.body["call_id"], r.body["effect"]) for r in kit.records(guarded) if r.kind == "decision"]
    assert effects == [("tu-0", "allow"), ("tu-1", "allow"), ("tu-2", "allow"), ("tu-3", "deny")]
    hashed_clock.advance(86_400)
    again = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-4", "amount": 300})])
    again("pay the last one")
    assert toolbox.executed[-1][1]["to"] == "acct-4"


def test_a_tool_error_is_recorded_with_its_type(guarded, toolbox, kit):
    toolbox.raises = ValueError("bank is down")
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 5})])
    agent("pay")
    assert kit.tool_results(agent)["tu-0"]["status"] == "error"
    decision, outcome = kit.records(guarded)
    assert (outcome.body["call"], outcome.body["status"]) == (decision.body["call"], "error")
    assert outcome.body["error"] == "ValueError: bank is down"


def test_concurrent_tool_calls_are_each_decided_and_linked(guarded, toolbox, kit):
    calls = [
        ("transfer_money", {"to": "acct-1", "amount": 100}),
        ("delete_file", {"path": "/a"}),
        ("read_file", {"path": "/b"}),
        ("transfer_money", {"to": "acct-2", "amount": 200}),
    ]
    agent = kit.agent(guarded, toolbox, calls)
    agent("do it all")
    assert sorted(name for name, _ in toolbox.executed) == ["read_file", "transfer_money", "transfer_money"]
    records = kit.records(guarded)
    decisions = {r.body["call_id"]: r.body for r in records if r.kind == "decision"}
    assert {k: d["effect"] for k, d in decisions.items()} == {
        "tu-0": "allow",
        "tu-1": "deny",
        "tu-2": "allow",
        "tu-3": "allow",
    }
    outcomes = {r.body["call"] for r in records if r.kind == "outcome"}
    assert outcomes == {decisions[k]["call"] for k in ("tu-0", "tu-2", "tu-3")}
    kit.assert_verifies(guarded)


# -- approvals ----------------------------------------------------------------------------------------------


def test_pending_call_is_refused_and_runs_once_approved_by_default(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 700})])
    agent("pay")
    assert toolbox.executed == []
    assert "waiting for human approval (rule transfers)" in kit.text(kit.tool_results(agent)["tu-0"])
    [request] = guarded.approvals.list("pending")
    guarded.approve(request.id, by="alice")
    again = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 700})])
    again("pay")
    assert len(toolbox.executed) == 1


def test_pending_call_interrupts_and_the_answer_in_the_app_is_the_signed_approval(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 700})], approvals="interrupt")
    result = agent("pay")
    assert result.stop_reason == "interrupt"
    assert toolbox.executed == []
    [asked] = result.interrupts
    [request] = guarded.approvals.list("pending")
    assert asked.name == "hashed-approval"
    assert asked.reason == {
        "approval": request.id,
        "tool": "transfer_money",
        "args": {"to": "acct-9", "amount": 700},
        "rule": "transfers",
        "reason": request.reason,
        "agent": "billing-bot",
    }
    result = agent([respond(asked, approve=True, by="alice", comment="known payee")])
    assert result.stop_reason == "end_turn"
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 700.0})]
    records = kit.records(guarded)
    kinds = [(r.kind, r.body.get("effect") or r.body.get("verdict") or r.body.get("status")) for r in records]
    assert kinds == [("decision", "pending"), ("approval", "approved"), ("decision", "allow"), ("outcome", "ok")]
    approval = records[1].body
    assert (approval["by"], approval["comment"], approval["approval"]) == ("alice", "known payee", request.id)
    assert records[2].body["reason"] == f"approved by alice ({request.id}): known payee"
    assert guarded.approvals.get(request.id).consumed
    kit.assert_verifies(guarded)


def test_a_no_in_the_app_is_a_signed_denial_the_model_sees(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 700})], approvals="interrupt")
    [asked] = agent("pay").interrupts
    agent([respond(asked, approve=False, by="bob", comment="unknown payee")])
    assert toolbox.executed == []
    text = kit.text(kit.tool_results(agent)["tu-0"])
    assert text.startswith("transfer_money denied by policy (rule transfers): bob denied approval apr_")
    kinds = [(r.kind, r.body.get("effect") or r.body.get("verdict")) for r in kit.records(guarded)]
    assert kinds == [("decision", "pending"), ("approval", "denied"), ("decision", "deny")]


def test_an_answer_given_elsewhere_first_stands(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 700})], approvals="interrupt")
    [asked] = agent("pay").interrupts
    [request] = guarded.approvals.list("pending")
    guarded.deny(request.id, by="carol", comment="not today")  # on the CLI, while the app was asking
    agent([respond(asked, approve=True, by="alice")])
    assert toolbox.executed == []
    assert "carol denied approval" in kit.text(kit.tool_results(agent)["tu-0"])


def test_a_direct_call_that_needs_approval_is_refused_not_interrupted(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, approvals="interrupt")
    result = agent.tool.transfer_money(to="acct-9", amount=700)
    assert result["status"] == "error"
    assert "waiting for human approval" in kit.text(result)
    assert toolbox.executed == []
    assert [r.body["effect"] for r in kit.records(guarded)] == ["pending"]


def test_interrupt_mode_is_checked():
    with pytest.raises(ValueError, match="approvals must be 'refuse' or 'interrupt'"):
        HashedHookProvider(approvals="ask")  # type: ignore[arg-type]


# -- direct calls, async ------------------------------------------------------------------------------------


def test_direct_tool_calls_are_guarded(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox)
    denied = agent.tool.delete_file(path="/etc/passwd")
    assert (denied["status"], kit.text(denied)) == (
        "error",
        "delete_file denied by policy (rule no-delete): Agents never delete files.",
    )
    allowed = agent.tool.read_file(path="/tmp/a")
    assert allowed["status"] == "success"
    assert toolbox.executed == [("read_file", {"path": "/tmp/a"})]
    records = kit.records(guarded)
    assert [(r.kind, r.body["tool"]) for r in records] == [
        ("decision", "delete_file"),
        ("decision", "read_file"),
        ("outcome", "read_file"),
    ]
    assert records[1].body["call_id"].startswith("tooluse_read_file_")  # Strands' own id for a direct call
    kit.assert_verifies(guarded)


def test_a_direct_call_raises_policy_denied_in_strict_mode(guarded, toolbox, kit):
    guarded.settings = guarded.settings.model_copy(update={"strict": True})
    agent = kit.agent(guarded, toolbox)
    with pytest.raises(PolicyDenied, match="Agents never delete files"):
        agent.tool.delete_file(path="/x")
    assert toolbox.executed == []


async def test_invoke_async_is_guarded(guarded, toolbox, kit):
    calls = [("delete_file", {"path": "/a"}), ("transfer_money", {"to": "acct-9", "amount": 10})]
    agent = kit.agent(guarded, toolbox, calls, tools=toolbox.async_tools())
    result = await agent.invoke_async("go")
    assert result.stop_reason == "end_turn"
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 10.0})]
    effects = sorted((r.body["tool"], r.kind, r.body.get("effect")) for r in kit.records(guarded))
    assert effects == [
        ("delete_file", "decision", "deny"),
        ("transfer_money", "decision", "allow"),
        ("transfer_money", "outcome", None),
    ]


async def test_stream_async_is_guarded_and_interrupts(guarded, toolbox, kit):
    calls = [("transfer_money", {"to": "acct-9", "amount": 700})]
    agent = kit.agent(guarded, toolbox, calls, tools=toolbox.async_tools(), approvals="interrupt")
    events = [event async for event in agent.stream_async("go")]
    result = events[-1]["result"]
    [asked] = result.interrupts
    assert toolbox.executed == []
    events = [event async for event in agent.stream_async([respond(asked, approve=True, by="alice")])]
    assert events[-1]["result"].stop_reason == "end_turn"
    assert len(toolbox.executed) == 1
    kinds = [r.kind for r in kit.records(guarded)]
    assert kinds == ["decision", "approval", "decision", "outcome"]


async def test_concurrent_async_agents_share_one_ledger(guarded, toolbox, kit):
    agents = [
        kit.agent(guarded, toolbox, [("read_file", {"path": f"/f{i}"})], tools=toolbox.async_tools()) for i in range(5)
    ]
    await asyncio.gather(*(a.invoke_async("read") for a in agents))
    assert len(toolbox.executed) == 5
    assert [r.kind for r in kit.records(guarded)].count("outcome") == 5
    kit.assert_verifies(guarded)


def test_agent_name_given_to_the_provider_wins(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("read_file", {"path": "/a"})], agent="ops")
    agent("read")
    assert {r.body["agent"] for r in kit.records(guarded)} == {"ops"}


def test_strands_default_agent_name_is_not_an_agent_name(guarded, toolbox, kit):
    model = kit.model([("read_file", {"path": "/a"})])
    agent = Agent(model=model, tools=toolbox.tools(), hooks=[HashedHookProvider(guarded)], callback_handler=None)
    agent("read")
    assert {r.body["agent"] for r in kit.records(guarded)} == {"agent"}  # the settings' name, as for plain Python
