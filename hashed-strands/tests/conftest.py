"""Real Strands agents, driven offline by a scripted `Model` subclass that streams Bedrock-style events."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("strands")

from packaging.version import Version
from strands import Agent, tool
from strands.models.model import Model

from hashed import Hashed, LedgerRecord
from hashed.testing import FrozenClock, make_hashed
from hashed_strands import HashedHookProvider, uninstrument

STRANDS = Version(version("strands-agents"))
TRANSFERS = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000, window: {per: 1d, max_sum: 1500}}}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: reads
    tools: [read_file]
    effect: allow
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
"""
Call = tuple[str, Any]  # (tool name, input object); the input is streamed as the model's JSON


class ScriptedModel(Model):
    """Strands' `Model` interface, answering from a script: each turn asks for some tool calls, then it says `final`.

    Tool use ids are `tu-0`, `tu-1`, ... in the order asked. `seen` keeps every message list it was shown.
    """

    def __init__(self, *turns: list[Call], final: str = "done") -> None:
        self.turns: list[list[Call] | str] = [*turns, final]
        self.seen: list[list[Any]] = []
        self.config: dict[str, Any] = {}
        self.asked = 0

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> Any:
        return self.config

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError
        yield

    async def stream(self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any) -> Any:
        self.seen.append(copy.deepcopy(messages))
        turn = self.turns.pop(0) if self.turns else "done"
        yield {"messageStart": {"role": "assistant"}}
        if isinstance(turn, str):
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": turn}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            return
        for name, args in turn:
            yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": f"tu-{self.asked}"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(args)}}}}
            yield {"contentBlockStop": {}}
            self.asked += 1
        yield {"messageStop": {"stopReason": "tool_use"}}


def tool_results(agent: Agent) -> dict[str, dict[str, Any]]:
    """The tool results in the agent's conversation, by tool use id."""
    out = {}
    for message in agent.messages:
        for block in message["content"]:
            if "toolResult" in block:
                out[block["toolResult"]["toolUseId"]] = block["toolResult"]
    return out


def result_text(result: dict[str, Any]) -> str:
    return " ".join(block.get("text", "") for block in result["content"])


@dataclasses.dataclass
class Toolbox:
    """Tools whose bodies log every run to `executed` (name, arguments); `raises` makes them fail."""

    executed: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    raises: BaseException | None = None

    def _body(self, name: str, **kwargs: Any) -> str:
        self.executed.append((name, kwargs))
        if self.raises is not None:
            raise self.raises
        return f"{name} done"

    def tools(self) -> list[Any]:
        @tool
        def transfer_money(to: str, amount: float) -> str:
            """Send money to an account."""
            return self._body("transfer_money", to=to, amount=amount)

        @tool
        def delete_file(path: str) -> str:
            """Delete a file."""
            return self._body("delete_file", path=path)

        @tool
        def read_file(path: str) -> str:
            """Read a file."""
            return self._body("read_file", path=path)

        return [transfer_money, delete_file, read_file]

    def async_tools(self) -> list[Any]:
        @tool
        async def transfer_money(to: str, amount: float) -> str:
            """Send money to an account."""
            return self._body("transfer_money", to=to, amount=amount)

        @tool
        async def delete_file(path: str) -> str:
            """Delete a file."""
            return self._body("delete_file", path=path)

        @tool
        async def read_file(path: str) -> str:
            """Read a file."""
            return self._body("read_file", path=path)

        return [transfer_money, delete_file, read_file]


def records(hashed: Hashed) -> list[LedgerRecord]:
    hashed.flush()
    return list(hashed.ledger.records())


def assert_verifies(hashed: Hashed) -> None:
    report = hashed.verify()
    assert report.ok, report.error
    assert report.unsigned == 0


def make_agent(
    hashed: Hashed | None, toolbox: Toolbox, *turns: list[Call], tools: list[Any] | None = None, **kwargs: Any
) -> Agent:
    """An agent whose scripted model asks for `turns`, guarded by a `HashedHookProvider` (unless `hashed` is None)."""
    hooks = [] if hashed is None else [HashedHookProvider(hashed, **kwargs)]
    model = ScriptedModel(*turns)
    return Agent(model=model, tools=tools or toolbox.tools(), hooks=hooks, callback_handler=None, name="billing-bot")


@dataclasses.dataclass(frozen=True)
class Kit:
    """What the tests share (tests never import each other, so helpers come through this fixture)."""

    agent: Callable[..., Agent] = make_agent
    model: Callable[..., ScriptedModel] = ScriptedModel
    records: Callable[[Hashed], list[LedgerRecord]] = records
    assert_verifies: Callable[[Hashed], None] = assert_verifies
    tool_results: Callable[[Agent], dict[str, dict[str, Any]]] = tool_results
    text: Callable[[dict[str, Any]], str] = result_text
    has_hook_order: bool = STRANDS >= Version("1.43")
    has_middleware: bool = STRANDS >= Version("1.62")
    inf: float = math.inf


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
