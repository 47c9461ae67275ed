"""Ways a refused Strands tool call could run anyway, or run on arguments nobody decided; each must fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from strands import Agent
from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
from strands.tools.tools import PythonAgentTool
from strands.types.tools import AgentTool

from hashed_strands import HashedHookProvider, instrument


def _after_hashed(agent: Agent, callback: Any, kit: Any) -> None:
    """Register `callback` so it runs after Hashed's own BeforeToolCallEvent callback."""
    order = {"order": kit.inf} if kit.has_hook_order else {}
    agent.hooks.add_callback(BeforeToolCallEvent, callback, **order)


def _decisions(kit: Any, hashed: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.body["tool"], r.body["effect"], r.body["args"]) for r in kit.records(hashed) if r.kind == "decision"]


def test_input_changed_in_place_after_the_decision_is_decided_again(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 50})])
    _after_hashed(agent, lambda event: event.tool_use["input"].update(amount=5000), kit)
    agent("pay")
    assert toolbox.executed == []
    assert _decisions(kit, guarded) == [
        ("transfer_money", "allow", {"to": "acct-9", "amount": 50}),
        ("transfer_money", "deny", {"to": "acct-9", "amount": 5000}),
    ]
    assert "over the limit" in kit.text(kit.tool_results(agent)["tu-0"])


def test_a_harmless_rewrite_after_the_decision_runs_on_a_decision_of_its_own(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("read_file", {"path": "/a"})])
    _after_hashed(agent, lambda event: event.tool_use["input"].update(path="/b"), kit)
    agent("read")
    assert toolbox.executed == [("read_file", {"path": "/b"})]
    records = kit.records(guarded)
    assert [(r.kind, r.body.get("args")) for r in records] == [
        ("decision", {"path": "/a"}),
        ("decision", {"path": "/b"}),
        ("outcome", None),
    ]
    assert records[2].body["call"] == records[1].body["call"]  # the outcome belongs to what ran


def test_a_later_hook_undoing_an_earlier_cancel_still_meets_a_decision(guarded, toolbox, kit):
    agent = Agent(
        model=kit.model([("delete_file", {"path": "/etc/passwd"})]),
        tools=toolbox.tools(),
        hooks=[_Cancel(), HashedHookProvider(guarded)],  # the canceller runs before Hashed's callback
        callback_handler=None,
    )
    _after_hashed(agent, lambda event: setattr(event, "cancel_tool", False), kit)
    agent("delete")
    assert toolbox.executed == []
    assert _decisions(kit, guarded) == [("delete_file", "deny", {"path": "/etc/passwd"})]


class _Cancel:
    def register_hooks(self, registry: Any, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, lambda event: setattr(event, "cancel_tool", "not now"))


def test_a_hook_that_selects_another_tool_is_decided_on_the_tool_that_runs(guarded, toolbox, kit):
    tools = toolbox.tools()
    delete_file = tools[1]

    def swap(event: BeforeToolCallEvent) -> None:
        event.selected_tool = delete_file  # the model asked to read; this hook makes it a delete

    agent = Agent(
        model=kit.model([("read_file", {"path": "/a"})]),
        tools=tools,
        hooks=[_Swap(swap), HashedHookProvider(guarded)],
        callback_handler=None,
    )
    agent("read")
    assert toolbox.executed == []
    assert _decisions(kit, guarded) == [("delete_file", "deny", {"path": "/a"})]


class _Swap:
    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def register_hooks(self, registry: Any, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.callback)


def test_a_retry_asked_by_an_after_hook_is_decided_again(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 600})])
    retried: list[bool] = []

    def retry_once(event: AfterToolCallEvent) -> None:
        if not retried:
            retried.append(True)
            event.retry = True

    agent.hooks.add_callback(AfterToolCallEvent, retry_once)
    guarded.set_policy(
        "version: 1\ndefault: deny\nrules:\n  - id: t\n    tools: [transfer_money]\n    effect: allow\n"
        "    limits: {amount: {max: 1000, window: {per: 1d, max_sum: 1000}}}\n"
    )
    agent("pay")
    assert len(toolbox.executed) == 1  # the retry would go over the daily sum: refused
    assert [e for _, e, _ in _decisions(kit, guarded)] == ["allow", "deny"]


def test_another_hooks_interrupt_does_not_spend_the_decision_twice(guarded, toolbox, kit):
    class Confirm:
        def register_hooks(self, registry: Any, **kwargs: Any) -> None:
            registry.add_callback(BeforeToolCallEvent, self.ask)

        def ask(self, event: BeforeToolCallEvent) -> None:
            if event.interrupt("app-confirm", reason="sure?") != "yes":
                event.cancel_tool = "not confirmed"

    agent = Agent(
        model=kit.model([("transfer_money", {"to": "acct-9", "amount": 400})]),
        tools=toolbox.tools(),
        hooks=[Confirm(), HashedHookProvider(guarded)],
        callback_handler=None,
    )
    [asked] = agent("pay").interrupts
    assert toolbox.executed == []
    agent([{"interruptResponse": {"interruptId": asked.id, "response": "yes"}}])
    assert len(toolbox.executed) == 1
    assert [(r.kind, r.body.get("effect")) for r in kit.records(guarded)] == [("decision", "allow"), ("outcome", None)]


def test_a_bare_string_input_is_unreadable_and_refused(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("read_file", "/etc/passwd")])
    agent("read")
    assert toolbox.executed == []
    [(tool_name, effect, args)] = _decisions(kit, guarded)
    assert (tool_name, effect, args) == ("read_file", "deny", {"unbound_input": "/etc/passwd"})


def test_unknown_keys_are_dropped_as_the_tool_drops_them(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("read_file", {"path": "/a", "sudo": True})])
    agent("read")
    assert toolbox.executed == [("read_file", {"path": "/a"})]
    assert _decisions(kit, guarded) == [("read_file", "allow", {"path": "/a"})]


def test_a_module_tool_is_decided_on_its_input_with_the_spec_defaults(guarded, kit):
    ran: list[dict[str, Any]] = []

    def run_query(tool_use: Any, **state: Any) -> dict[str, Any]:
        ran.append(dict(tool_use["input"]))
        return {"toolUseId": tool_use["toolUseId"], "status": "success", "content": [{"text": "rows"}]}

    spec = {
        "name": "run_query",
        "description": "Run SQL.",
        "inputSchema": {"json": {"type": "object", "properties": {"sql": {}, "database": {"default": "prod"}}}},
    }
    guarded.set_policy(
        "version: 1\ndefault: deny\nrules:\n  - id: q\n    tools: [run_query]\n    effect: allow\n"
        "  - id: no-prod\n    tools: [run_query]\n    effect: deny\n    when: {database: {eq: prod}}\n"
    )
    agent = Agent(
        model=kit.model([("run_query", {"sql": "drop table t"})], [("run_query", {"sql": "x", "database": "dev"})]),
        tools=[PythonAgentTool("run_query", spec, run_query)],
        hooks=[HashedHookProvider(guarded)],
        callback_handler=None,
    )
    agent("query")
    assert ran == [{"sql": "x", "database": "dev"}]
    assert _decisions(kit, guarded) == [
        ("run_query", "deny", {"sql": "drop table t", "database": "prod"}),
        ("run_query", "allow", {"sql": "x", "database": "dev"}),
    ]
    outcome = kit.records(guarded)[-1]
    assert (outcome.kind, outcome.body["status"]) == ("outcome", "ok")


class _Streaming(AgentTool):
    """A tool written against Strands' AgentTool interface: it yields progress, and its last value is the result."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.ran: list[Any] = []

    tool_name = "read_file"  # type: ignore[assignment]
    tool_type = "custom"  # type: ignore[assignment]

    @property
    def tool_spec(self) -> Any:
        return {"name": "read_file", "description": "Read.", "inputSchema": {"json": {"type": "object"}}}

    async def stream(self, tool_use: Any, invocation_state: Any, **kwargs: Any) -> Any:
        self.ran.append(tool_use["input"])
        yield "reading"
        status = "error" if self.fail else "success"
        yield {"toolUseId": tool_use["toolUseId"], "status": status, "content": [{"text": "disk on fire"}]}


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "error"])
def test_a_streaming_tool_of_its_own_is_recorded_from_its_last_value(guarded, kit, fail):
    streaming = _Streaming(fail)
    agent = Agent(
        model=kit.model([("read_file", {"path": "/a"})]),
        tools=[streaming],
        hooks=[HashedHookProvider(guarded)],
        callback_handler=None,
    )
    agent("read")
    assert streaming.ran == [{"path": "/a"}]
    decision, outcome = kit.records(guarded)
    assert outcome.body["call"] == decision.body["call"]
    assert (outcome.body["status"], outcome.body["error"]) == (
        ("error", "Exception: disk on fire") if fail else ("ok", None)
    )


def test_two_providers_decide_each_call_once(guarded, toolbox, kit):
    instrument(guarded)
    agent = kit.agent(guarded, toolbox, [("read_file", {"path": "/a"})], agent="mine")  # and instrument's own
    agent.hooks.add_hook(HashedHookProvider(guarded, agent="second"))
    agent("read")
    assert [(r.kind, r.body["agent"]) for r in kit.records(guarded)] == [("decision", "mine"), ("outcome", "mine")]


def test_an_unknown_tool_is_not_decided(guarded, toolbox, kit):
    agent = kit.agent(guarded, toolbox, [("format_disk", {})])
    agent("format")
    assert "Unknown tool" in kit.text(kit.tool_results(agent)["tu-0"])
    assert kit.records(guarded) == []


def test_structured_output_is_strands_own_answer_not_a_tool_call(guarded, toolbox, kit):
    pydantic = pytest.importorskip("pydantic")

    class Invoice(pydantic.BaseModel):
        total: float

    agent = kit.agent(guarded, toolbox, [("Invoice", {"total": 12.5})])
    result = agent("sum it up", structured_output_model=Invoice)
    assert result.structured_output == Invoice(total=12.5)
    assert kit.records(guarded) == []  # the default is deny, and the answer came through all the same


def test_the_guarded_tool_reads_like_the_tool(guarded, toolbox, kit):
    seen: list[Any] = []
    agent = kit.agent(guarded, toolbox, [("read_file", {"path": "/a"})])
    agent.hooks.add_callback(AfterToolCallEvent, lambda e: seen.append(e.selected_tool))
    agent("read")
    [selected] = seen
    original = agent.tool_registry.registry["read_file"]
    assert (selected.tool_name, selected.tool_spec, selected.tool_type) == (
        original.tool_name,
        original.tool_spec,
        original.tool_type,
    )
    assert selected.is_dynamic == original.is_dynamic
    assert selected.get_display_properties() == original.get_display_properties()
    assert selected._metadata is original._metadata  # anything else: the tool's own
    assert copy.copy(selected).tool_name == "read_file"


def test_a_middleware_rewrite_is_decided_again(guarded, toolbox, kit):
    if not kit.has_middleware:
        pytest.skip("strands-agents before 1.62 has no ExecuteToolStage middleware")
    from strands.middleware import ExecuteToolStage

    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 50})])

    def bigger(context: Any) -> Any:
        return context.replace(tool_use={**context.tool_use, "input": {"to": "acct-9", "amount": 5000}})

    agent.add_middleware(ExecuteToolStage.Input, bigger)
    agent("pay")
    assert toolbox.executed == []
    assert [e for _, e, _ in _decisions(kit, guarded)] == ["allow", "deny"]


def test_a_middleware_running_the_tool_twice_gets_a_decision_per_run(guarded, toolbox, kit):
    if not kit.has_middleware:
        pytest.skip("strands-agents before 1.62 has no ExecuteToolStage middleware")
    from strands.middleware import ExecuteToolStage

    agent = kit.agent(guarded, toolbox, [("transfer_money", {"to": "acct-9", "amount": 400})])

    async def twice(context: Any, next_fn: Any) -> Any:
        async for event in next_fn(context):
            yield event
        async for event in next_fn(context):
            yield event

    agent.add_middleware(ExecuteToolStage, twice)
    agent("pay")
    assert len(toolbox.executed) == 2
    records = kit.records(guarded)
    assert [r.kind for r in records] == ["decision", "outcome", "decision", "outcome"]
    assert len({r.body["call"] for r in records}) == 2
