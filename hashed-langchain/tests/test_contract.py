"""The shared adapter contract, on real `create_agent` loops and chains driven by LangChain's fake chat model."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import langchain.agents
import pytest
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool

from hashed import Hashed, PolicyDenied
from hashed.testing.contract import AdapterContract, HarnessRun
from hashed_langchain import HashedCallbackHandler, HashedMiddleware, instrument, uninstrument


class _Model(FakeMessagesListChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> _Model:  # type: ignore[override]
        return self


class _Rewrite(AgentMiddleware):
    """A middleware placed after HashedMiddleware that changes a tool call's arguments on their way to the tool."""

    def __init__(self, args: dict[str, Any]) -> None:
        super().__init__()
        self.args = args

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        return handler(request.override(tool_call={**request.tool_call, "args": self.args}))


class _SelfRunning(BaseTool):
    """A user's tool class that runs its body itself: its `run` overrides LangChain's `BaseTool.run`."""

    inner: StructuredTool

    def run(self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any) -> Any:
        arguments = dict(tool_input)
        if "tool_call_id" in inspect.signature(self.inner.func).parameters:  # relay's injected id
            arguments.setdefault("tool_call_id", tool_call_id)
        out = self._run(**arguments)
        return out if tool_call_id is None else ToolMessage(out, tool_call_id=tool_call_id, name=self.name)

    def _run(self, **kwargs: Any) -> Any:
        return self.inner.func(**kwargs)  # type: ignore[misc]


class LangChainHarness:
    framework = "langchain"

    def _tools(
        self, run: HarnessRun, tool_raises: BaseException | None, overriding: bool = False
    ) -> dict[str, BaseTool]:
        def body(**kwargs: Any) -> str:
            run.executed.append(kwargs)
            if tool_raises is not None:
                raise tool_raises
            return "done"

        def transfer_money(to: str, amount: float) -> str:
            """Send money."""
            return body(to=to, amount=amount)

        def delete_file(path: str) -> str:
            """Delete a file."""
            return body(path=path)

        def run_query(sql: str, database: str = "prod") -> str:
            """Run SQL."""
            return body(sql=sql, database=database)

        def write_file(path: str) -> str:
            """Write a file."""
            return body(path=path)

        def relay(path: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
            """Ask another tool to delete a file, reusing this call's id."""
            body(path=path)
            inner = {"name": "delete_file", "args": {"path": path}, "id": tool_call_id, "type": "tool_call"}
            return str(tools["delete_file"].invoke(inner).content)

        tools: dict[str, BaseTool] = {
            f.__name__: StructuredTool.from_function(f)
            for f in (transfer_money, delete_file, run_query, write_file, relay)
        }
        if overriding:
            tools = {
                name: _SelfRunning(name=name, description=t.description, args_schema=t.args_schema, inner=t)
                for name, t in tools.items()
            }
        return tools

    def _agent_run(
        self,
        hashed: Hashed,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        installed: bool = False,
        extra: tuple[AgentMiddleware, ...] = (),
        tool_raises: BaseException | None = None,
        overriding: bool = False,
    ) -> HarnessRun:
        run = HarnessRun()
        tools = self._tools(run, tool_raises, overriding)
        tool_calls = [{"name": n, "args": a, "id": f"call-{i}", "type": "tool_call"} for i, (n, a) in enumerate(calls)]
        model = _Model(responses=[AIMessage("", tool_calls=tool_calls), AIMessage("ok")])
        middleware = [] if installed else [HashedMiddleware(hashed), *extra]
        agent = langchain.agents.create_agent(model, list(tools.values()), middleware=middleware)
        try:
            result = agent.invoke({"messages": [("user", "go")]})
        except Exception as exc:
            run.error = exc
            return run
        seen = [m for m in result["messages"] if isinstance(m, ToolMessage)]
        run.tool_result = str(seen[0].content) if seen else None
        return run

    def run(
        self,
        hashed: Hashed,
        tool: str,
        args: dict[str, Any],
        *,
        tool_raises: BaseException | None = None,
        installed: bool = False,
    ) -> HarnessRun:
        return self._agent_run(hashed, [(tool, args)], installed=installed, tool_raises=tool_raises)

    def run_rewritten(self, hashed: Hashed, tool: str, args: dict[str, Any], rewritten: dict[str, Any]) -> HarnessRun:
        return self._agent_run(hashed, [(tool, args)], extra=(_Rewrite(rewritten),))

    def run_parallel(self, hashed: Hashed, calls: list[tuple[str, dict[str, Any]]]) -> HarnessRun:
        return self._agent_run(hashed, calls)

    def run_overriding(self, hashed: Hashed, tool: str, args: dict[str, Any]) -> HarnessRun:
        instrument(hashed)
        try:
            return self._agent_run(hashed, [(tool, args)], installed=True, overriding=True)
        finally:
            uninstrument()

    def run_single_input(self, hashed: Hashed, tool: str, value: str) -> HarnessRun:
        run = HarnessRun()
        chain = RunnableLambda(lambda text: text) | self._tools(run, None)[tool]
        try:
            run.tool_result = str(chain.invoke(value, {"callbacks": [HashedCallbackHandler(hashed)]}))
        except PolicyDenied as exc:
            run.tool_result = str(exc)
        return run

    def install(self, hashed: Hashed) -> None:
        instrument(hashed)

    def uninstall(self) -> None:
        uninstrument()


class TestLangChainContract(AdapterContract):
    @pytest.fixture
    def harness(self) -> LangChainHarness:
        return LangChainHarness()
