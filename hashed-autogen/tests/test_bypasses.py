"""Ways a refused call could run anyway, on real agent runs: each must fail, and each attempt is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core import AgentId, CancellationToken, FunctionCall, SingleThreadedAgentRuntime
from autogen_core.models import CreateResult, RequestUsage
from autogen_core.tool_agent import ToolAgent, ToolExecutionException
from autogen_core.tools import BaseTool, FunctionTool, StaticWorkbench, ToolOverride
from autogen_ext.models.replay import ReplayChatCompletionClient
from pydantic import BaseModel

from hashed import PolicyDenied
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


RELAY_POLICY = """
version: 1
default: deny
rules:
  - {id: relays, tools: [relay], effect: allow}
  - {id: reads, tools: [read_file], effect: allow}
  - {id: no-delete, tools: [delete_file], effect: deny, reason: Agents never delete files.}
"""


def test_under_instrument_a_tool_that_runs_another_has_that_run_decided_too(guarded, toolbox, kit):
    # A tool body awaiting another tool's run_json ran a call the policy denies, with no record: only the agent's
    # own calls were decided. Now each run no agent's call decided is decided where it runs, under the agent's name.
    guarded.set_policy(RELAY_POLICY)
    instrument(guarded)
    tools = {t.name: t for t in toolbox.tools()}

    async def relay(path: str) -> str:
        """Read a file, then tidy it up."""
        await tools["read_file"].run_json({"path": path}, CancellationToken())
        return str(await tools["delete_file"].run_json({"path": path}, CancellationToken(), call_id="inner"))

    bot = AssistantAgent(
        "janitor",
        model_client=kit.replay([("relay", {"path": "/srv/a"})]),
        tools=[*tools.values(), FunctionTool(relay, description="Relay.")],
    )
    task = kit.run(bot.run(task="tidy up"))
    assert toolbox.executed == [("read_file", {"path": "/srv/a", "encoding": "utf-8"})]
    result = kit.results(task)["c0"]  # relay's body learnt of the refusal by PolicyDenied, and failed with it
    assert (result.is_error, result.content) == (
        True,
        "delete_file denied by policy (rule no-delete): Agents never delete files.",
    )
    assert [(r.kind, r.body["tool"], r.body["agent"], r.body.get("effect")) for r in kit.records(guarded)] == [
        ("decision", "relay", "janitor", "allow"),
        ("decision", "read_file", "janitor", "allow"),
        ("outcome", "read_file", "janitor", None),
        ("decision", "delete_file", "janitor", "deny"),
        ("outcome", "relay", "janitor", None),
    ]
    kit.assert_verifies(guarded)


async def test_under_instrument_the_core_tool_agent_and_direct_runs_are_decided(guarded, toolbox, kit):
    # Under zero-code only AssistantAgent's calls were decided: the core ToolAgent ran a denied call, and so did a
    # direct `await tool.run_json(...)`.
    instrument(guarded)
    tools = toolbox.tools()
    runtime = SingleThreadedAgentRuntime()
    await ToolAgent.register(runtime, "tools", lambda: ToolAgent("tools", tools))
    runtime.start()
    try:
        with pytest.raises(ToolExecutionException) as refused:
            await kit.timed(
                runtime.send_message(
                    FunctionCall(id="t0", name="delete_file", arguments='{"path": "/x"}'), AgentId("tools", "default")
                )
            )
        assert "Agents never delete files" in refused.value.content
        done = await kit.timed(
            runtime.send_message(
                FunctionCall(id="t1", name="read_file", arguments='{"path": "/a"}'), AgentId("tools", "default")
            )
        )
    finally:
        await runtime.stop_when_idle()
    assert (done.content, done.is_error) == ("read_file done", False)
    by_name = {t.name: t for t in tools}
    with pytest.raises(PolicyDenied, match="Agents never delete files"):
        await by_name["delete_file"].run_json({"path": "/y"}, CancellationToken())
    assert await by_name["read_file"].run_json({"path": "/b"}, CancellationToken()) == "read_file done"
    assert toolbox.executed == [
        ("read_file", {"path": "/a", "encoding": "utf-8"}),
        ("read_file", {"path": "/b", "encoding": "utf-8"}),
    ]
    assert [(r.kind, r.body["tool"], r.body.get("effect"), r.body.get("call_id")) for r in kit.records(guarded)] == [
        ("decision", "delete_file", "deny", "t0"),
        ("decision", "read_file", "allow", "t1"),
        ("outcome", "read_file", None, None),  # (an outcome names its decision, not the call id)
        ("decision", "delete_file", "deny", None),
        ("decision", "read_file", "allow", None),
        ("outcome", "read_file", None, None),
    ]
    kit.assert_verifies(guarded)


def test_under_instrument_an_agents_call_is_decided_once(guarded, toolbox, kit):
    # The agent's call is decided by its workbench, which hands it to the run_json it reaches: not decided twice
    instrument(guarded)
    bot = AssistantAgent("janitor", model_client=kit.replay([("read_file", {"path": "/a"})]), tools=toolbox.tools())
    kit.run(bot.run(task="read"))
    assert [(r.kind, r.body["tool"]) for r in kit.records(guarded)] == [
        ("decision", "read_file"),
        ("outcome", "read_file"),
    ]
    assert len(toolbox.executed) == 1


class _LoggedTool(BaseTool[BaseModel, str]):
    """A tool class with its own `run_json` (to log each call), which goes on to AutoGen's own."""

    def __init__(self, tool: BaseTool[Any, Any]) -> None:
        super().__init__(tool.args_type(), str, tool.name, tool.description)
        self.tool = tool

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> str:
        return str(await self.tool.run(args, cancellation_token))

    async def run_json(self, args: Any, cancellation_token: CancellationToken, call_id: str | None = None) -> Any:
        return await super().run_json(args, cancellation_token, call_id=call_id)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "guard_tools"])
def test_under_instrument_a_tool_with_its_own_run_json_is_decided_once(guarded, toolbox, kit, wrapped):
    instrument(guarded)
    tools = [_LoggedTool(t) for t in toolbox.tools()]
    bot = AssistantAgent(
        "janitor",
        model_client=kit.replay([("read_file", {"path": "/a"}), ("delete_file", {"path": "/b"})]),
        tools=guard_tools(tools, guarded) if wrapped else tools,
    )
    kit.run(bot.run(task="tidy"))
    assert toolbox.executed == [("read_file", {"path": "/a", "encoding": "utf-8"})]
    assert sorted((r.kind, r.body["tool"], r.body.get("effect")) for r in kit.records(guarded)) == [
        ("decision", "delete_file", "deny"),
        ("decision", "read_file", "allow"),
        ("outcome", "read_file", None),
    ]  # one decision per call: the two calls run at once, in either order
    kit.assert_verifies(guarded)
