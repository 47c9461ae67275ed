"""The zero-code patch (`instrument`) on real, unmodified `AssistantAgent` runs: agent names, handoffs, strict mode,
and a clear `FrameworkVersionError` when the private method it patches has moved."""

from __future__ import annotations

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import HandoffMessage

from hashed import PolicyDenied
from hashed.adapters import FrameworkVersionError
from hashed_autogen import guard_tools, instrument, uninstrument
from hashed_autogen._hooks import SHAPE, check


def test_an_unmodified_agent_is_guarded_under_its_own_name(guarded, toolbox, kit):
    instrument(guarded)
    calls = [("delete_file", {"path": "/etc/passwd"}), ("read_file", {"path": "/srv/a"})]
    bot = AssistantAgent("janitor", model_client=kit.replay(calls), tools=toolbox.tools())
    task = kit.run(bot.run(task="tidy up"))
    assert toolbox.executed == [("read_file", {"path": "/srv/a", "encoding": "utf-8"})]
    got = kit.results(task)
    assert (got["c0"].is_error, got["c0"].content) == (
        True,
        "delete_file denied by policy (rule no-delete): Agents never delete files.",
    )
    assert (got["c1"].is_error, got["c1"].content) == (False, "read_file done")
    by_call = {d.body["call_id"]: d.body for d in kit.decisions(guarded)}
    assert {k: (d["agent"], d["effect"], d["framework"]) for k, d in by_call.items()} == {
        "c0": ("janitor", "deny", "autogen"),
        "c1": ("janitor", "allow", "autogen"),
    }
    assert by_call["c1"]["args"] == {"path": "/srv/a", "encoding": "utf-8"}  # the schema's default, decided
    kit.assert_verifies(guarded)


def test_a_handoff_is_left_to_autogen_and_the_tools_around_it_are_guarded(guarded, toolbox, kit):
    instrument(guarded)
    calls = [("delete_file", {"path": "/x"}), ("transfer_to_auditor", {})]
    bot = AssistantAgent("ops", model_client=kit.replay(calls), tools=toolbox.tools(), handoffs=["auditor"])
    task = kit.run(bot.run(task="hand over"))
    assert toolbox.executed == []
    assert [m.target for m in task.messages if isinstance(m, HandoffMessage)] == ["auditor"]
    assert [(d.body["tool"], d.body["effect"]) for d in kit.decisions(guarded)] == [("delete_file", "deny")]


def test_strict_mode_lets_policy_denied_out_of_the_run_without_hanging(guarded, toolbox, kit):
    guarded.settings = guarded.settings.model_copy(update={"strict": True})
    instrument(guarded)
    bot = AssistantAgent("janitor", model_client=kit.replay([("delete_file", {"path": "/x"})]), tools=toolbox.tools())
    with pytest.raises(PolicyDenied, match="Agents never delete files"):
        kit.run(bot.run(task="tidy up"))
    assert toolbox.executed == []
    [decision] = kit.decisions(guarded)
    assert decision.body["effect"] == "deny"


def test_guard_tools_under_instrument_decide_each_call_once(guarded, toolbox, kit):
    instrument(guarded)
    tools = guard_tools(toolbox.tools(), guarded, agent="mine")
    bot = AssistantAgent("janitor", model_client=kit.replay([("read_file", {"path": "/a"})]), tools=tools)
    kit.run(bot.run(task="read"))
    assert [(r.kind, r.body["agent"]) for r in kit.records(guarded)] == [
        ("decision", "janitor"),
        ("outcome", "janitor"),
    ]
    assert len(toolbox.executed) == 1


def test_instrument_is_idempotent_and_uninstrument_leaves_agents_alone(guarded, toolbox, kit):
    instrument(guarded)
    patched = AssistantAgent.__dict__["_execute_tool_call"]
    instrument(guarded)
    assert AssistantAgent.__dict__["_execute_tool_call"] is patched
    uninstrument()
    bot = AssistantAgent("janitor", model_client=kit.replay([("delete_file", {"path": "/x"})]), tools=toolbox.tools())
    kit.run(bot.run(task="tidy up"))
    assert toolbox.executed == [("delete_file", {"path": "/x"})]
    assert kit.records(guarded) == []


def test_a_moved_private_method_fails_loudly_instead_of_leaving_agents_unguarded(guarded, monkeypatch):
    async def moved(tool_call, workbench, agent_name, cancellation_token):  # a future shape
        raise AssertionError("never called")

    monkeypatch.setattr(AssistantAgent, "_execute_tool_call", staticmethod(moved))
    with (
        pytest.warns(RuntimeWarning, match="AutoGen agents are NOT guarded"),
        pytest.raises(FrameworkVersionError) as err,
    ):
        instrument(guarded)
    assert err.value.framework.startswith("autogen-agentchat")
    assert "_execute_tool_call(tool_call, workbench, handoff_tools, agent_name, cancellation_token, stream)" in str(
        err.value
    )
    assert "guard_tools" in err.value.hint


def test_a_removed_private_method_or_another_release_is_refused():
    class Moved:
        pass

    with pytest.raises(FrameworkVersionError, match="has no AssistantAgent._execute_tool_call"):
        check(Moved, "0.7.5")
    with pytest.raises(FrameworkVersionError, match="autogen-agentchat 0.8.0 has no"):
        check(AssistantAgent, "0.8.0")
    with pytest.raises(FrameworkVersionError, match=r"autogen-agentchat \(unknown version\) has no"):
        check(AssistantAgent, "(unknown version)")
    assert check(AssistantAgent, "0.7.0").__name__ == "_execute_tool_call"
    assert SHAPE[0] == "tool_call"
