"""Ways a refused call could run anyway, on real agent runs: each must fail, and each attempt is recorded."""

from __future__ import annotations

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_core.tools import StaticWorkbench, ToolOverride
from autogen_ext.models.replay import ReplayChatCompletionClient

from hashed_autogen import guard_tools, instrument


def raw_client(kit, name: str, arguments: str) -> ReplayChatCompletionClient:
    call = FunctionCall(id="c0", name=name, arguments=arguments)
    usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
    result = CreateResult(finish_reason="function_calls", content=[call], usage=usage, cached=False)
    return ReplayChatCompletionClient([result, "done"], model_info=kit.model_info)


@pytest.mark.parametrize("arguments", ['"/etc/passwd"', '["/etc/passwd"]', "null", '{"path": ["/etc", "passwd"]}'])
@pytest.mark.parametrize("how", ["guard_tools", "instrument"])
def test_arguments_that_are_not_the_tools_parameters_never_run(guarded, toolbox, kit, arguments, how):
    if how == "instrument":
        instrument(guarded)
        tools = toolbox.tools()
    else:
        tools = guard_tools(toolbox.tools(), guarded)
    bot = AssistantAgent("ops", model_client=raw_client(kit, "read_file", arguments), tools=tools)
    task = kit.run(bot.run(task="read"))
    [result] = kit.results(task).values()
    records = kit.records(guarded)
    assert records and result.is_error and toolbox.executed == []
    # guard_tools decides on the tool's own validation, which refuses these: a recorded denial. Under instrument the
    # workbench's JSON is decided as sent (what an MCP server would get); the tool's validation then refuses it.
    assert all(r.kind == "outcome" or how == "instrument" or r.body["effect"] == "deny" for r in records)
    assert all(r.body["status"] == "error" for r in records if r.kind == "outcome")


def test_a_renamed_tool_is_decided_under_its_own_name(guarded, toolbox, kit):
    delete = guard_tools(toolbox.tools(), guarded)[1]
    workbench = StaticWorkbench([delete], tool_overrides={"delete_file": ToolOverride(name="tidy_up")})
    bot = AssistantAgent("ops", model_client=kit.replay([("tidy_up", {"path": "/srv"})]), workbench=workbench)
    task = kit.run(bot.run(task="tidy"))
    assert toolbox.executed == []
    [decision] = kit.decisions(guarded)
    assert (decision.body["tool"], decision.body["effect"]) == ("delete_file", "deny")
    assert "Agents never delete files" in next(iter(kit.results(task).values())).content
