"""Ways a call that policy denies could still run in LangChain (issue #13), each on a real agent loop or chain.

The shared contract (`test_contract.py`) holds the cases every adapter must pass; these are LangChain's own
entry points and shapes: every public way a tool runs, the callback path, and LangChain's own error swallowing.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AnyMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import hashed_langchain
from hashed import Hashed, PolicyDenied, PolicyFileError
from hashed.plugins import hookimpl
from hashed.testing import make_hashed
from hashed_langchain import HashedCallbackHandler, HashedMiddleware

POLICY = """
version: 1
default: deny
rules:
  - {id: queries, tools: [run_query], effect: allow}
  - {id: no-prod, tools: [run_query], effect: deny, when: {database: {eq: prod}}}
  - {id: writes, tools: [write_file], effect: allow}
  - {id: no-etc, tools: [write_file], effect: deny, when: {path: {matches: "^/etc"}}}
  - {id: shipping, tools: [ship], effect: allow}
  - {id: embargo, tools: [ship], effect: deny, when: {country: {in: [NO, KP]}}}
"""


class State(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]


@pytest.fixture
def hashed(tmp_path) -> Any:
    with make_hashed(tmp_path / ".hashed", policy=POLICY) as instance:
        yield instance


@pytest.fixture
def ran() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture
def tools(ran) -> dict[str, BaseTool]:
    def run_query(sql: str, database: str = "prod") -> str:
        """Run SQL."""
        ran.append(("run_query", {"sql": sql, "database": database}))
        return "rows"

    def write_file(path: str) -> str:
        """Write a file."""
        ran.append(("write_file", {"path": path}))
        return "written"

    def ship(to: str, country: str) -> str:
        """Ship a parcel."""
        ran.append(("ship", {"to": to, "country": country}))
        return "shipped"

    return {f.__name__: StructuredTool.from_function(f) for f in (run_query, write_file, ship)}


def _decisions(hashed: Hashed) -> list[tuple[str, str, dict[str, Any]]]:
    hashed.flush()
    return [(r.body["tool"], r.body["effect"], r.body["args"]) for r in hashed.ledger.records() if r.kind == "decision"]


def test_omitted_default_is_decided_in_an_agent(hashed, tools, ran, kit):
    model = kit.script([("run_query", {"sql": "drop table t"})])
    agent = create_agent(model, list(tools.values()), middleware=[HashedMiddleware(hashed)])
    agent.invoke({"messages": [("user", "clean up")]})
    assert ran == []
    assert model.saw()["c0"].startswith("run_query denied by policy (rule no-prod)")
    assert _decisions(hashed) == [("run_query", "deny", {"sql": "drop table t", "database": "prod"})]


def test_single_string_input_binds_to_the_parameter_on_the_callback_path(hashed, tools, ran):
    handler = HashedCallbackHandler(hashed)
    with pytest.raises(PolicyDenied, match="rule no-etc"):
        tools["write_file"].invoke("/etc/passwd", {"callbacks": [handler]})
    chain = RunnableLambda(lambda path: path) | tools["write_file"]
    with pytest.raises(PolicyDenied, match="rule no-etc"):
        chain.invoke("/etc/shadow", {"callbacks": [handler]})
    assert chain.invoke("/tmp/notes", {"callbacks": [handler]}) == "written"
    assert ran == [("write_file", {"path": "/tmp/notes"})]
    assert [d[:2] for d in _decisions(hashed)] == [("write_file", "deny")] * 2 + [("write_file", "allow")]


def _prebuilt() -> Any:
    # At the oldest pins (langchain 1.0.0), the resolver pairs langgraph 1.0.10 with a langgraph-prebuilt that
    # needs a newer langgraph: `langgraph.prebuilt` itself cannot be imported there, so neither entry point exists.
    return pytest.importorskip(
        "langgraph.prebuilt", reason="langgraph.prebuilt does not import at these pins", exc_type=ImportError
    )


def _graph_with_tool_node(model, tools) -> Any:
    def call_model(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: State) -> str:
        return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END

    graph = StateGraph(State)
    graph.add_node("model", call_model)
    graph.add_node("tools", _prebuilt().ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route)
    graph.add_edge("tools", "model")
    return graph.compile()


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")  # still public in langgraph 1.x
@pytest.mark.parametrize("entry", ["create_react_agent", "StateGraph+ToolNode", "tool.invoke", "batch"])
def test_every_public_way_a_tool_runs_is_guarded_once_instrumented(hashed, tools, ran, kit, entry):
    hashed_langchain.instrument(hashed)
    model = kit.script([("write_file", {"path": "/etc/passwd"}), ("write_file", {"path": "/tmp/a"})])
    if entry == "create_react_agent":
        _prebuilt().create_react_agent(model, list(tools.values())).invoke({"messages": [("user", "go")]})
        assert model.saw()["c0"].startswith("write_file denied by policy (rule no-etc)")
    elif entry == "StateGraph+ToolNode":
        _graph_with_tool_node(model, list(tools.values())).invoke({"messages": [("user", "go")]})
        assert model.saw()["c0"].startswith("write_file denied by policy (rule no-etc)")
    elif entry == "tool.invoke":
        with pytest.raises(PolicyDenied):
            tools["write_file"].invoke({"path": "/etc/passwd"})
        tools["write_file"].invoke({"path": "/tmp/a"})
    else:
        results = tools["write_file"].batch([{"path": "/etc/passwd"}, {"path": "/tmp/a"}], return_exceptions=True)
        assert isinstance(results[0], PolicyDenied) and results[1] == "written"
    assert ran == [("write_file", {"path": "/tmp/a"})]
    # ToolNode and batch run the two calls on threads side by side: their records come in either order.
    decided = sorted((tool, effect, args["path"]) for tool, effect, args in _decisions(hashed))
    assert decided == [("write_file", "allow", "/tmp/a"), ("write_file", "deny", "/etc/passwd")]


class _Broken:
    @hookimpl
    def hashed_decide(self, call: Any) -> None:
        raise NotImplementedError("LangChain's callback manager only logs this one")


@pytest.mark.parametrize("path", ["middleware", "callback"])
def test_an_exception_langchain_would_swallow_denies_with_the_reason(tmp_path, tools, ran, kit, path):
    with make_hashed(tmp_path / ".hashed", policy=POLICY, raise_internal_errors=False) as hashed:
        hashed.register_plugin(_Broken())
        if path == "middleware":
            model = kit.script([("write_file", {"path": "/tmp/a"})])
            create_agent(model, list(tools.values()), middleware=[HashedMiddleware(hashed)]).invoke(
                {"messages": [("user", "go")]}
            )
            assert "NotImplementedError" in model.saw()["c0"]
        else:
            with pytest.raises(PolicyDenied, match="NotImplementedError"):
                tools["write_file"].invoke({"path": "/tmp/a"}, {"callbacks": [HashedCallbackHandler(hashed)]})
        assert ran == []
        assert [d[:2] for d in _decisions(hashed)] == [("write_file", "deny")]


@pytest.mark.parametrize("path", ["middleware", "callback"])
def test_an_exception_langchain_would_swallow_escaping_the_guard_still_blocks_the_tool(hashed, tools, ran, kit, path):
    hashed.register_plugin(_Broken())  # hashed.testing raises internal errors instead of logging them
    if path == "middleware":
        agent = create_agent(
            kit.script([("write_file", {"path": "/tmp/a"})]),
            list(tools.values()),
            middleware=[HashedMiddleware(hashed)],
        )
        with pytest.raises(NotImplementedError):
            agent.invoke({"messages": [("user", "go")]})
    else:
        with pytest.raises(NotImplementedError):
            tools["write_file"].invoke({"path": "/tmp/a"}, {"callbacks": [HashedCallbackHandler(hashed)]})
    assert ran == []


def test_yaml_no_is_norway_not_false_in_an_agent(hashed, tools, ran, kit):
    model = kit.script([("ship", {"to": "Oslo", "country": "NO"})])
    create_agent(model, list(tools.values()), middleware=[HashedMiddleware(hashed)]).invoke(
        {"messages": [("user", "ship it")]}
    )
    assert ran == []
    assert model.saw()["c0"].startswith("ship denied by policy (rule embargo)")


def test_a_glob_that_matches_nothing_stops_the_agent_at_start(tmp_path):
    with pytest.raises(PolicyFileError, match=r"rules\[0\]\.tools\[0\]: glob 'delete_\[' opens a \[ set"):
        make_hashed(tmp_path / ".hashed", policy='rules: [{id: r, tools: ["delete_["], effect: deny}]')


class _PathInput(BaseModel):
    path: str


class SelfRunning(BaseTool):
    """A user's tool class whose `run` and `arun` skip LangChain's own (to log each run, say)."""

    name: str = "write_file"
    description: str = "Write a file."
    args_schema: type[BaseModel] = _PathInput
    ran: list[str] = Field(default_factory=list)

    def run(self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any) -> Any:
        out = self._run(**tool_input)  # as LangChain's run answers a model's tool call: with a ToolMessage
        return out if tool_call_id is None else ToolMessage(out, tool_call_id=tool_call_id, name=self.name)

    async def arun(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        return self.run(tool_input, *args, **kwargs)

    def _run(self, path: str) -> str:
        self.ran.append(path)
        return "written"


class PassingOn(SelfRunning):
    """An override that goes on to LangChain's own run through super(): one run, decided once."""

    def run(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        return BaseTool.run(self, tool_input, *args, **kwargs)

    async def arun(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        return await BaseTool.arun(self, tool_input, *args, **kwargs)


def test_a_tool_class_that_overrides_run_is_decided_where_it_runs(hashed, kit):
    # Its run skipped LangChain's, where Hashed decides: an agent's call that policy denies ran (a warning said so)
    HashedMiddleware(hashed)  # the wrapper is in place from here on; SelfRunning was made before (found then)
    tool = SelfRunning()
    model = kit.script([("write_file", {"path": "/etc/passwd"}), ("write_file", {"path": "/tmp/a"})])
    create_agent(model, [tool], middleware=[HashedMiddleware(hashed)]).invoke({"messages": [("user", "go")]})
    assert tool.ran == ["/tmp/a"]
    assert model.saw()["c0"].startswith("write_file denied by policy (rule no-etc)")
    assert model.saw()["c1"] == "written"
    assert [d[:2] for d in _decisions(hashed)] == [("write_file", "deny"), ("write_file", "allow")]
    assert hashed.verify().ok


async def test_an_override_made_after_the_wrapper_is_decided_once_per_run_sync_and_async(hashed, kit):
    hashed_langchain.instrument(hashed)

    class Late(PassingOn):  # made after instrument(): wrapped as it is made
        def run(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
            return super().run(tool_input, *args, **kwargs)

    tool, plain = Late(), SelfRunning()
    assert tool.invoke({"path": "/tmp/a"}) == "written"
    assert await tool.ainvoke({"path": "/tmp/b"}) == "written"
    assert await plain.ainvoke({"path": "/tmp/c"}) == "written"  # its arun calls its own run: the same run
    with pytest.raises(PolicyDenied, match="rule no-etc"):
        tool.invoke({"path": "/etc/passwd"})
    with pytest.raises(PolicyDenied, match="rule no-etc"):
        await plain.ainvoke({"path": "/etc/shadow"})
    assert (tool.ran, plain.ran) == (["/tmp/a", "/tmp/b"], ["/tmp/c"])
    # one decision per run: Late.run, PassingOn.run and BaseTool.run are one run, not three
    assert [d[:2] for d in _decisions(hashed)] == [("write_file", "allow")] * 3 + [("write_file", "deny")] * 2
    assert hashed.verify().ok


def test_refused_tool_call_message_is_an_error_tool_message(hashed, tools, kit):
    model = kit.script([("write_file", {"path": "/etc/x"})])
    result = create_agent(model, list(tools.values()), middleware=[HashedMiddleware(hashed)]).invoke(
        {"messages": [("user", "go")]}
    )
    [message] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert (message.status, message.name, message.tool_call_id) == ("error", "write_file", "c0")
