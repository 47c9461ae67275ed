"""The shared adapter contract, on real `create_agent` loops driven by LangChain's fake chat model."""

from __future__ import annotations

from typing import Any

import langchain.agents
import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import StructuredTool

from hashed import Hashed
from hashed.testing.contract import AdapterContract, HarnessRun
from hashed_langchain import HashedMiddleware, instrument, uninstrument


class _Model(FakeMessagesListChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> _Model:  # type: ignore[override]
        return self


class LangChainHarness:
    framework = "langchain"

    def run(
        self,
        hashed: Hashed,
        tool: str,
        args: dict[str, Any],
        *,
        tool_raises: BaseException | None = None,
        installed: bool = False,
    ) -> HarnessRun:
        run = HarnessRun()

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

        tools = [StructuredTool.from_function(transfer_money), StructuredTool.from_function(delete_file)]
        model = _Model(
            responses=[AIMessage("", tool_calls=[{"name": tool, "args": args, "id": "call-1"}]), AIMessage("ok")]
        )
        if installed:  # a plain agent: no Hashed code at all, guarded only by instrument()
            agent = langchain.agents.create_agent(model, tools)
        else:  # the one added line
            agent = langchain.agents.create_agent(model, tools, middleware=[HashedMiddleware(hashed)])
        try:
            result = agent.invoke({"messages": [("user", "go")]})
        except Exception as exc:
            run.error = exc
            return run
        seen = [m for m in result["messages"] if isinstance(m, ToolMessage)]
        run.tool_result = str(seen[0].content) if seen else None
        return run

    def install(self, hashed: Hashed) -> None:
        instrument(hashed)

    def uninstall(self) -> None:
        uninstrument()


class TestLangChainContract(AdapterContract):
    @pytest.fixture
    def harness(self) -> LangChainHarness:
        return LangChainHarness()
