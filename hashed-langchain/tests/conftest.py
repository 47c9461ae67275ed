"""Real LangChain agents and chains, driven offline by LangChain's own fake chat model (no network, no API key)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain")

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from packaging.version import Version
from pydantic import Field

from hashed import Hashed, LedgerRecord
from hashed.testing import FrozenClock, make_hashed
from hashed_langchain import uninstrument

TRANSFERS = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000, window: {per: 1d, max_sum: 1500}}}
  - id: reads
    tools: [read_file]
    effect: allow
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
"""


class FakeToolModel(FakeMessagesListChatModel):
    """LangChain's scripted fake chat model, keeping what it was shown; `create_agent` binds tools, which the base
    fake refuses to do."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeToolModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)

    def saw(self) -> dict[str, str]:
        """The tool results the model was last shown, by tool call id."""
        return {m.tool_call_id: str(m.content) for m in self.seen[-1] if isinstance(m, ToolMessage)}


def script(*turns: list[tuple[str, dict[str, Any]]], final: str = "done") -> FakeToolModel:
    """A model that asks for each turn's tool calls (one AIMessage per turn, ids c0, c1, ...) and then answers."""
    responses: list[BaseMessage] = []
    n = 0
    for turn in turns:
        calls = []
        for name, args in turn:
            calls.append({"name": name, "args": args, "id": f"c{n}", "type": "tool_call"})
            n += 1
        responses.append(AIMessage("", tool_calls=calls))
    responses.append(AIMessage(final))
    return FakeToolModel(responses=responses)


@dataclasses.dataclass
class Toolbox:
    """Tools whose bodies log every run to `executed` (name, args); `raises` makes them fail."""

    executed: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    raises: BaseException | None = None

    def _body(self, name: str, **kwargs: Any) -> str:
        self.executed.append((name, kwargs))
        if self.raises is not None:
            raise self.raises
        return f"{name} done"

    def sync_tools(self) -> list[BaseTool]:
        def transfer_money(to: str, amount: float) -> str:
            """Send money to an account."""
            return self._body("transfer_money", to=to, amount=amount)

        def delete_file(path: str) -> str:
            """Delete a file."""
            return self._body("delete_file", path=path)

        def read_file(path: str) -> str:
            """Read a file."""
            return self._body("read_file", path=path)

        return [StructuredTool.from_function(f) for f in (transfer_money, delete_file, read_file)]

    def async_tools(self) -> list[BaseTool]:
        async def transfer_money(to: str, amount: float) -> str:
            """Send money to an account."""
            return self._body("transfer_money", to=to, amount=amount)

        async def delete_file(path: str) -> str:
            """Delete a file."""
            return self._body("delete_file", path=path)

        async def read_file(path: str) -> str:
            """Read a file."""
            return self._body("read_file", path=path)

        return [StructuredTool.from_function(coroutine=f) for f in (transfer_money, delete_file, read_file)]


def records(hashed: Hashed) -> list[LedgerRecord]:
    hashed.flush()
    return list(hashed.ledger.records())


def assert_verifies(hashed: Hashed) -> None:
    report = hashed.verify()
    assert report.ok, report.error
    assert report.unsigned == 0


def tool_messages(result: dict[str, Any]) -> dict[str, ToolMessage]:
    """The tool results the model saw, by tool call id."""
    return {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}


@dataclasses.dataclass(frozen=True)
class Kit:
    """What the tests share (tests never import each other, so helpers come through this fixture)."""

    script: Callable[..., FakeToolModel] = script
    records: Callable[[Hashed], list[LedgerRecord]] = records
    assert_verifies: Callable[[Hashed], None] = assert_verifies
    tool_messages: Callable[[dict[str, Any]], dict[str, ToolMessage]] = tool_messages
    # `create_agent(name=...)` reaches tool calls (metadata `lc_agent_name`) from langchain 1.3 on; 1.0-1.2.0 lack it
    agent_name_reaches_tools: bool = Version(version("langchain")) >= Version("1.3")


@pytest.fixture
def kit() -> Kit:
    return Kit()


@pytest.fixture
def toolbox() -> Toolbox:
    return Toolbox()


@pytest.fixture(params=["durable", "immediate"])
def guarded(request: pytest.FixtureRequest, tmp_path: Path, hashed_clock: FrozenClock) -> Iterator[Hashed]:
    """A real offline Hashed with the TRANSFERS policy, in each mode that loses nothing when the process dies."""
    home = tmp_path / ".hashed"
    with make_hashed(home, policy=TRANSFERS, clock=hashed_clock, durability=request.param) as hashed:
        yield hashed


@pytest.fixture(autouse=True)
def _never_left_instrumented() -> Iterator[None]:
    yield
    uninstrument()
