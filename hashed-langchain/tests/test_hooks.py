"""HashedMiddleware and HashedCallbackHandler on real LangChain agents, chains and tools (offline fake model)."""

from __future__ import annotations

import copy
import inspect
import threading
import time

import pytest
from langchain.agents import create_agent
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import StructuredTool, ToolException

import hashed_langchain
from hashed import Hashed, PolicyDenied
from hashed_langchain import HashedCallbackHandler, HashedMiddleware

# -- agents: HashedMiddleware ---------------------------------------------------------------------------------


def test_middleware_denial_reaches_the_model_and_the_run_goes_on(guarded: Hashed, toolbox, kit):
    model = kit.script([("delete_file", {"path": "/etc/passwd"}), ("read_file", {"path": "/readme"})])
    agent = create_agent(model, toolbox.sync_tools(), middleware=[HashedMiddleware(guarded)], name="ops-bot")

    result = agent.invoke({"messages": [("user", "clean up")]}, {"configurable": {"thread_id": "t-1"}})

    assert toolbox.executed == [("read_file", {"path": "/readme"})]
    assert result["messages"][-1].content == "done"
    assert model.saw() == {
        "c0": "delete_file denied by policy (rule no-delete): Agents never delete files.",
        "c1": "read_file done",
    }
    assert kit.tool_messages(result)["c0"].status == "error"
    records = kit.records(guarded)
    decisions = {r.body["call_id"]: r for r in records if r.kind == "decision"}  # the two calls ran in parallel
    [outcome] = [r for r in records if r.kind == "outcome"]
    assert {k: (d.body["effect"], d.body["tool"]) for k, d in decisions.items()} == {
        "c0": ("deny", "delete_file"),
        "c1": ("allow", "read_file"),
    }
    # older langchain: the settings' name (or HashedMiddleware(agent=...))
    agent = "ops-bot" if kit.agent_name_reaches_tools else "agent"
    for record in decisions.values():
        assert (record.body["agent"], record.body["run_id"], record.body["framework"]) == (agent, "t-1", "langchain")
    assert (outcome.body["status"], outcome.body["call"]) == ("ok", decisions["c1"].body["call"])
    kit.assert_verifies(guarded)


def test_middleware_agent_argument_names_the_agent(guarded: Hashed, toolbox, kit):
    agent = create_agent(
        kit.script([("read_file", {"path": "/a"})]),
        toolbox.sync_tools(),
        middleware=[HashedMiddleware(guarded, agent="reader")],
        name="ignored",
    )
    agent.invoke({"messages": [("user", "go")]})
    assert {r.body["agent"] for r in kit.records(guarded)} == {"reader"}
    kit.assert_verifies(guarded)


def test_middleware_hook_shows_langsmith_the_signature_of_the_method():
    # create_agent wraps the hook in LangSmith's traceable, which names traced inputs from inspect.signature(hook)
    middleware = HashedMiddleware()
    method = HashedMiddleware.wrap_tool_call.__get__(middleware)
    assert inspect.signature(middleware.wrap_tool_call) == inspect.signature(method)
    assert list(inspect.signature(middleware.wrap_tool_call).parameters) == ["request", "handler"]


def test_middleware_copy_hook_acts_for_the_copy(guarded: Hashed, toolbox, kit):
    original = HashedMiddleware(guarded, agent="original")
    copied = copy.copy(original)
    copied.agent = "copy"
    agent = create_agent(kit.script([("read_file", {"path": "/a"})]), toolbox.sync_tools(), middleware=[copied])
    agent.invoke({"messages": [("user", "go")]})
    assert {r.body["agent"] for r in kit.records(guarded)} == {"copy"}
    kit.assert_verifies(guarded)


def test_middleware_subclass_hook_override_is_the_one_that_runs(guarded: Hashed, toolbox, kit):
    seen = []

    class Audited(HashedMiddleware):
        def wrap_tool_call(self, request, handler):
            seen.append(request.tool_call["name"])
            return super().wrap_tool_call(request, handler)

    model = kit.script([("delete_file", {"path": "/etc/passwd"})])
    agent = create_agent(model, toolbox.sync_tools(), middleware=[Audited(guarded)])
    agent.invoke({"messages": [("user", "clean up")]})

    assert seen == ["delete_file"]
    assert toolbox.executed == []
    assert [(r.kind, r.body["effect"]) for r in kit.records(guarded)] == [("decision", "deny")]
    kit.assert_verifies(guarded)


def test_middleware_over_limit_by_keyword_is_denied(guarded: Hashed, toolbox, kit):
    model = kit.script([("transfer_money", {"to": "acct-9", "amount": 5000})])
    agent = create_agent(model, toolbox.sync_tools(), middleware=[HashedMiddleware(guarded)])
    agent.invoke({"messages": [("user", "pay")]})
    assert toolbox.executed == []
    assert "over the limit of 1000" in model.saw()["c0"]
    [decision] = kit.records(guarded)
    assert (decision.body["effect"], decision.body["args"]) == ("deny", {"to": "acct-9", "amount": 5000})
    kit.assert_verifies(guarded)


def test_middleware_window_limit_denies_then_allows_after_the_window(guarded: Hashed, hashed_clock, toolbox, kit):
    def pay() -> str:
        model = kit.script([("transfer_money", {"to": "acct-9", "amount": 600})])
        create_agent(model, toolbox.sync_tools(), middleware=[HashedMiddleware(guarded)]).invoke(
            {"messages": [("user", "pay")]}
        )
        return model.saw()["c0"]

    assert pay() == pay() == "transfer_money done"
    third = pay()
    assert "window limit reached" in third and "1200 used" in third
    hashed_clock.advance(24 * 3600 + 1)
    assert pay() == "transfer_money done"
    assert len(toolbox.executed) == 3
    effects = [r.body["effect"] for r in kit.records(guarded) if r.kind == "decision"]
    assert effects == ["allow", "allow", "deny", "allow"]
    kit.assert_verifies(guarded)


def test_middleware_tool_exception_is_recorded_and_reraised_unmodified(guarded: Hashed, toolbox, kit):
    toolbox.raises = error = ValueError("bank is down")
    agent = create_agent(
        kit.script([("transfer_money", {"to": "a", "amount": 5})]),
        toolbox.sync_tools(),
        middleware=[HashedMiddleware(guarded)],
    )
    with pytest.raises(ValueError, match="bank is down") as raised:
        agent.invoke({"messages": [("user", "pay")]})
    assert raised.value is error
    decision, outcome = kit.records(guarded)
    assert (outcome.body["status"], outcome.body["error"]) == ("error", "ValueError: bank is down")
    assert outcome.body["call"] == decision.body["call"]
    kit.assert_verifies(guarded)


def test_middleware_handled_tool_error_message_is_an_error_outcome(guarded: Hashed, kit):
    def read_file(path: str) -> str:
        """Read a file."""
        raise ToolException(f"{path}: no such file")

    tool = StructuredTool.from_function(read_file, handle_tool_error=True)
    model = kit.script([("read_file", {"path": "/nope"})])
    create_agent(model, [tool], middleware=[HashedMiddleware(guarded)]).invoke({"messages": [("user", "read")]})
    assert model.saw() == {"c0": "/nope: no such file"}
    outcome = kit.records(guarded)[-1]
    assert (outcome.body["status"], outcome.body["error"]) == ("error", "ToolException: /nope: no such file")
    kit.assert_verifies(guarded)


@pytest.mark.parametrize("kind", ["sync_tools", "async_tools"])
async def test_middleware_async_agent(guarded: Hashed, toolbox, kit, kind):
    model = kit.script([("delete_file", {"path": "/x"})], [("transfer_money", {"to": "acct-1", "amount": 10})])
    agent = create_agent(model, getattr(toolbox, kind)(), middleware=[HashedMiddleware(guarded)], name="async-bot")
    result = await agent.ainvoke({"messages": [("user", "go")]}, {"configurable": {"thread_id": "a-1"}})
    assert toolbox.executed == [("transfer_money", {"to": "acct-1", "amount": 10.0})]
    assert "denied by policy" in kit.tool_messages(result)["c0"].content
    assert model.saw()["c1"] == "transfer_money done"
    kinds = [(r.kind, r.body.get("effect"), r.body.get("call_id")) for r in kit.records(guarded)]
    assert kinds == [("decision", "deny", "c0"), ("decision", "allow", "c1"), ("outcome", None, None)]
    assert {r.body["run_id"] for r in kit.records(guarded) if r.kind == "decision"} == {"a-1"}
    kit.assert_verifies(guarded)


PARALLEL = [
    ("transfer_money", {"to": "acct-1", "amount": 10}),
    ("delete_file", {"path": "/x"}),
    ("transfer_money", {"to": "acct-2", "amount": 20}),
    ("read_file", {"path": "/y"}),
    ("transfer_money", {"to": "acct-3", "amount": 5000}),
]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_middleware_parallel_tool_calls_in_one_message(guarded: Hashed, toolbox, kit, mode):
    model = kit.script(PARALLEL)
    agent = create_agent(model, toolbox.sync_tools(), middleware=[HashedMiddleware(guarded)])
    state = {"messages": [("user", "go")]}
    _ = await agent.ainvoke(state) if mode == "ainvoke" else agent.invoke(state)

    assert sorted(name for name, _ in toolbox.executed) == ["read_file", "transfer_money", "transfer_money"]
    seen = model.saw()
    assert [("denied by policy" in seen[f"c{i}"]) for i in range(5)] == [False, True, False, False, True]
    records = kit.records(guarded)
    decisions = {r.body["call_id"]: r for r in records if r.kind == "decision"}
    outcomes = [r for r in records if r.kind == "outcome"]
    assert sorted(decisions) == ["c0", "c1", "c2", "c3", "c4"]
    allowed = {d.body["call"] for d in decisions.values() if d.body["effect"] == "allow"}
    assert sorted(o.body["call"] for o in outcomes) == sorted(allowed) and len(allowed) == 3
    kit.assert_verifies(guarded)


@pytest.mark.parametrize(
    ("mode", "kind"), [("invoke", "sync_tools"), ("ainvoke", "sync_tools"), ("ainvoke", "async_tools")]
)
async def test_middleware_and_callback_handler_together_guard_each_call_once(guarded: Hashed, toolbox, kit, mode, kind):
    model = kit.script([("read_file", {"path": "/a"}), ("delete_file", {"path": "/b"})])
    agent = create_agent(model, getattr(toolbox, kind)(), middleware=[HashedMiddleware(guarded)])
    state, config = {"messages": [("user", "go")]}, {"callbacks": [HashedCallbackHandler(guarded)]}
    _ = await agent.ainvoke(state, config) if mode == "ainvoke" else agent.invoke(state, config)
    assert toolbox.executed == [("read_file", {"path": "/a"})]
    assert sorted(r.kind for r in kit.records(guarded)) == ["decision", "decision", "outcome"]  # parallel calls
    kit.assert_verifies(guarded)


# -- chains and tools: HashedCallbackHandler -------------------------------------------------------------------


def _chain(kit, toolbox, *call):
    """A plain tool-calling chain: model -> its first tool call -> the tool (by name)."""
    tools = {t.name: t for t in toolbox.sync_tools()}
    pick = RunnableLambda(lambda message: message.tool_calls[0])
    route = RunnableLambda(lambda tool_call: tools[tool_call["name"]])
    return kit.script([call]) | pick | route


def test_callback_chain_runs_allowed_tool_and_records_it(guarded: Hashed, toolbox, kit):
    chain = _chain(kit, toolbox, "transfer_money", {"to": "acct-9", "amount": 50})
    message = chain.invoke("pay", {"callbacks": [HashedCallbackHandler(guarded)], "metadata": {"thread_id": "chain-1"}})
    assert (message.content, message.tool_call_id) == ("transfer_money done", "c0")
    decision, outcome = kit.records(guarded)
    assert (decision.body["effect"], decision.body["call_id"], decision.body["run_id"]) == ("allow", "c0", "chain-1")
    assert (outcome.body["status"], outcome.body["call"]) == ("ok", decision.body["call"])
    kit.assert_verifies(guarded)


def test_callback_chain_denied_tool_call_answers_with_the_refusal_and_never_runs(guarded: Hashed, toolbox, kit):
    chain = _chain(kit, toolbox, "delete_file", {"path": "/etc"})
    message = chain.invoke("clean", {"callbacks": [HashedCallbackHandler(guarded)]})
    assert toolbox.executed == []
    assert (message.status, message.tool_call_id) == ("error", "c0")
    assert message.content == "delete_file denied by policy (rule no-delete): Agents never delete files."
    [decision] = kit.records(guarded)
    assert (decision.body["effect"], decision.body["call_id"]) == ("deny", "c0")
    kit.assert_verifies(guarded)


def test_callback_chain_denied_tool_call_raises_in_strict_mode(guarded: Hashed, toolbox, kit):
    guarded.settings = guarded.settings.model_copy(update={"strict": True})
    chain = _chain(kit, toolbox, "delete_file", {"path": "/etc"})
    with pytest.raises(PolicyDenied) as raised:
        chain.invoke("clean", {"callbacks": [HashedCallbackHandler(guarded)]})
    assert toolbox.executed == []
    assert str(raised.value) == "delete_file denied by policy (rule no-delete): Agents never delete files."


def test_callback_over_limit_by_keyword_on_direct_tool_use(guarded: Hashed, toolbox, kit):
    transfer = toolbox.sync_tools()[0]
    handler = HashedCallbackHandler(guarded)
    with pytest.raises(PolicyDenied, match="over the limit of 1000"):
        transfer.invoke({"to": "acct-9", "amount": 5000}, {"callbacks": [handler]})
    assert transfer.invoke({"to": "acct-9", "amount": 999}, {"callbacks": [handler]}) == "transfer_money done"
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 999.0})]
    deny, allow, outcome = kit.records(guarded)
    assert (deny.body["effect"], allow.body["effect"], outcome.body["call"]) == ("deny", "allow", allow.body["call"])
    assert deny.body["call_id"] != allow.body["call_id"]  # each direct run has its own callback run id
    kit.assert_verifies(guarded)


@pytest.mark.parametrize("kind", ["sync_tools", "async_tools"])
async def test_callback_ainvoke_denies_sync_and_async_tools(guarded: Hashed, toolbox, kit, kind):
    transfer, delete, _ = getattr(toolbox, kind)()
    handler = HashedCallbackHandler(guarded)
    with pytest.raises(PolicyDenied):
        await delete.ainvoke({"path": "/x"}, {"callbacks": [handler]})
    assert await transfer.ainvoke({"to": "a", "amount": 1}, {"callbacks": [handler]}) == "transfer_money done"
    assert toolbox.executed == [("transfer_money", {"to": "a", "amount": 1.0})]
    assert [(r.kind, r.body.get("effect")) for r in kit.records(guarded)] == [
        ("decision", "deny"),
        ("decision", "allow"),
        ("outcome", None),
    ]
    kit.assert_verifies(guarded)


def test_callback_tool_error_is_recorded_and_propagates(guarded: Hashed, toolbox, kit):
    toolbox.raises = error = ConnectionError("bank unreachable")
    transfer = toolbox.sync_tools()[0]
    with pytest.raises(ConnectionError) as raised:
        transfer.invoke({"to": "a", "amount": 1}, {"callbacks": [HashedCallbackHandler(guarded)]})
    assert raised.value is error
    outcome = kit.records(guarded)[-1]
    assert (outcome.body["status"], outcome.body["error"]) == ("error", "ConnectionError: bank unreachable")
    kit.assert_verifies(guarded)


def test_callback_in_agent_with_tool_error_middleware_is_graceful(guarded: Hashed, toolbox, kit):
    middleware = pytest.importorskip("langchain.agents.middleware")
    if not hasattr(middleware, "ToolErrorMiddleware"):
        pytest.skip("ToolErrorMiddleware is not in this langchain version")
    tool_errors = middleware.ToolErrorMiddleware(
        on_error=lambda e, req: str(e) if isinstance(e, PolicyDenied) else None
    )
    model = kit.script([("delete_file", {"path": "/x"})])
    agent = create_agent(model, toolbox.sync_tools(), middleware=[tool_errors], name="cb-bot")
    agent.invoke({"messages": [("user", "go")]}, {"callbacks": [HashedCallbackHandler(guarded)]})
    assert toolbox.executed == []
    assert model.saw() == {"c0": "delete_file denied by policy (rule no-delete): Agents never delete files."}
    [decision] = kit.records(guarded)
    assert (decision.body["agent"], decision.body["call_id"]) == ("cb-bot", "c0")
    kit.assert_verifies(guarded)


def test_instrument_guards_direct_tool_use_in_every_thread(guarded: Hashed, toolbox, kit):
    transfer, delete, _ = toolbox.sync_tools()
    assert delete.invoke({"path": "/before"}) == "delete_file done"  # not instrumented: LangChain alone
    hashed_langchain.instrument(guarded)
    errors: list[BaseException] = []

    def in_a_thread() -> None:  # a plain thread starts with a fresh context: nothing may depend on it
        try:
            delete.invoke({"path": "/x"})
        except PolicyDenied as exc:
            errors.append(exc)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert [type(e) for e in errors] == [PolicyDenied]
    assert transfer.invoke({"to": "a", "amount": 3}) == "transfer_money done"
    assert [name for name, _ in toolbox.executed] == ["delete_file", "transfer_money"]
    assert [(r.kind, r.body.get("effect")) for r in kit.records(guarded)] == [
        ("decision", "deny"),
        ("decision", "allow"),
        ("outcome", None),
    ]
    kit.assert_verifies(guarded)


# -- pending approvals ------------------------------------------------------------------------------------------

APPROVALS = """
version: 1
default: deny
rules:
  - id: big-transfers
    tools: [transfer_money]
    effect: allow
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
"""


def _approve_when_asked(hashed: Hashed) -> threading.Thread:
    def approver() -> None:
        for _ in range(500):
            pending = hashed.approvals.list("pending")
            if pending:
                hashed.approve(pending[0].id, by="alice")
                return
            time.sleep(0.01)

    thread = threading.Thread(target=approver)
    thread.start()
    return thread


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_pending_call_waits_for_approval_when_the_core_says_so(guarded: Hashed, toolbox, kit, mode):
    guarded.set_policy(APPROVALS)
    guarded.settings = guarded.settings.model_copy(update={"approval_wait": 10.0, "approval_poll": 0.01})
    model = kit.script([("transfer_money", {"to": "acct-9", "amount": 700})])
    agent = create_agent(model, toolbox.sync_tools(), middleware=[HashedMiddleware(guarded)])
    approver = _approve_when_asked(guarded)
    state = {"messages": [("user", "pay")]}
    _ = await agent.ainvoke(state) if mode == "ainvoke" else agent.invoke(state)
    approver.join()
    assert toolbox.executed == [("transfer_money", {"to": "acct-9", "amount": 700.0})]
    assert model.saw() == {"c0": "transfer_money done"}
    kinds = [(r.kind, r.body.get("effect") or r.body.get("verdict")) for r in kit.records(guarded)]
    assert kinds == [("decision", "pending"), ("approval", "approved"), ("decision", "allow"), ("outcome", None)]
    kit.assert_verifies(guarded)


def test_pending_call_without_waiting_shows_the_model_the_approval_request(guarded: Hashed, toolbox, kit):
    guarded.set_policy(APPROVALS)
    model = kit.script([("transfer_money", {"to": "acct-9", "amount": 700})])
    create_agent(model, toolbox.sync_tools(), middleware=[HashedMiddleware(guarded)]).invoke(
        {"messages": [("user", "pay")]}
    )
    [request] = guarded.approvals.list("pending")
    assert toolbox.executed == []
    [decision] = kit.records(guarded)
    assert (decision.body["effect"], decision.body["approval"]) == ("pending", request.id)
    kit.assert_verifies(guarded)
    assert model.saw()["c0"].startswith(
        f"transfer_money is waiting for human approval (rule big-transfers), request {request.id}"
    )
