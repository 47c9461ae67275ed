"""Real AutoGen agents and teams, driven offline by AutoGen's own replay model client (no network, no API key).

Every run is awaited under a timeout: AutoGen 0.7 hangs for ever when a tool-call path raises, and a test that
waits for ever proves nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.replay")

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, FunctionExecutionResult, ModelInfo, RequestUsage
from autogen_core.tools import BaseTool, FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

from hashed import Hashed, LedgerRecord
from hashed.testing import FrozenClock, make_hashed
from hashed_autogen import uninstrument

T = TypeVar("T")
TIMEOUT = 30  # seconds: generous, and a hang fails the test instead of stalling the suite

POLICY = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000, window: {per: 1d, max_sum: 1500}}}
    approval: {when: {amount: {gt: 800}}, timeout: 15m}
  - id: reads
    tools: [read_file]
    effect: allow
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
"""
MODEL_INFO = ModelInfo(
    vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False
)


def replay(*turns: list[tuple[str, dict[str, Any]]], final: str = "done", ids: str = "c") -> ReplayChatCompletionClient:
    """A model that asks for each turn's tool calls at once (ids c0, c1, ...), then answers `final`."""
    responses: list[CreateResult | str] = []
    n = 0
    for turn in turns:
        calls = []
        for name, args in turn:
            calls.append(FunctionCall(id=f"{ids}{n}", name=name, arguments=json.dumps(args)))
            n += 1
        usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        responses.append(CreateResult(finish_reason="function_calls", content=calls, usage=usage, cached=False))
    responses.append(final)
    return ReplayChatCompletionClient(responses, model_info=MODEL_INFO)


def run(awaitable: Awaitable[T]) -> T:
    """Run one agent or team to its end, or fail after TIMEOUT seconds."""
    return asyncio.run(asyncio.wait_for(awaitable, TIMEOUT))  # type: ignore[arg-type]


async def timed(awaitable: Awaitable[T]) -> T:
    """Await one agent or team run inside a test's own event loop, or fail after TIMEOUT seconds."""
    return await asyncio.wait_for(awaitable, TIMEOUT)


def results(task: TaskResult) -> dict[str, FunctionExecutionResult]:
    """The tool results the model was given, by call id."""
    found = {}
    for message in task.messages:
        if isinstance(message, ToolCallExecutionEvent):
            found.update({r.call_id: r for r in message.content})
    return found


@dataclasses.dataclass
class Toolbox:
    """AutoGen `FunctionTool`s whose bodies log every run to `executed` (name, args); `raises` makes them fail."""

    executed: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    raises: BaseException | None = None

    def _body(self, name: str, **kwargs: Any) -> str:
        self.executed.append((name, kwargs))
        if self.raises is not None:
            raise self.raises
        return f"{name} done"

    def tools(self) -> list[BaseTool[Any, Any]]:
        async def transfer_money(to: str, amount: float) -> str:
            return self._body("transfer_money", to=to, amount=amount)

        async def delete_file(path: str) -> str:
            return self._body("delete_file", path=path)

        def read_file(path: str, encoding: str = "utf-8") -> str:  # sync: AutoGen runs it in a thread
            return self._body("read_file", path=path, encoding=encoding)

        return [
            FunctionTool(transfer_money, description="Send money to an account."),
            FunctionTool(delete_file, description="Delete a file."),
            FunctionTool(read_file, description="Read a file."),
        ]


def records(hashed: Hashed) -> list[LedgerRecord]:
    hashed.flush()
    return list(hashed.ledger.records())


def decisions(hashed: Hashed) -> list[LedgerRecord]:
    return [r for r in records(hashed) if r.kind == "decision"]


def assert_verifies(hashed: Hashed) -> None:
    report = hashed.verify()
    assert report.ok, report.error
    assert report.unsigned == 0


@dataclasses.dataclass(frozen=True)
class Kit:
    """What the tests share (tests never import each other, so helpers come through this fixture)."""

    replay: Callable[..., ReplayChatCompletionClient] = replay
    run: Callable[[Awaitable[Any]], Any] = run
    timed: Callable[[Awaitable[Any]], Awaitable[Any]] = timed
    results: Callable[[TaskResult], dict[str, FunctionExecutionResult]] = results
    records: Callable[[Hashed], list[LedgerRecord]] = records
    decisions: Callable[[Hashed], list[LedgerRecord]] = decisions
    assert_verifies: Callable[[Hashed], None] = assert_verifies
    model_info: ModelInfo = dataclasses.field(default_factory=lambda: MODEL_INFO)


@pytest.fixture
def kit() -> Kit:
    return Kit()


@pytest.fixture
def toolbox() -> Toolbox:
    return Toolbox()


@pytest.fixture(params=["durable", "immediate"])
def guarded(request: pytest.FixtureRequest, tmp_path: Path, hashed_clock: FrozenClock) -> Iterator[Hashed]:
    """A real offline Hashed with the POLICY above, in each mode that loses nothing when the process dies."""
    with make_hashed(tmp_path / ".hashed", policy=POLICY, clock=hashed_clock, durability=request.param) as hashed:
        yield hashed


@pytest.fixture(autouse=True)
def _never_left_instrumented() -> Iterator[None]:
    yield
    uninstrument()
