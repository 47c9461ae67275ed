"""Real CrewAI crews, driven offline by a scripted `BaseLLM` (no network, no API key), on both tool-calling paths.

`react`: the model answers in ReAct text ("Action: ... Action Input: {...}"), which CrewAI parses. `native`: the
model supports function calling and returns tool calls, which CrewAI runs (several in one message run in parallel).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# CrewAI writes under $HOME and its storage dir, and with telemetry on each process waits ≈ 10 s at exit
# (docs/frameworks/crewai.md): set before CrewAI is imported, for this process and the subprocesses it starts.
os.environ.update(CREWAI_DISABLE_TELEMETRY="true", OTEL_SDK_DISABLED="true", CREWAI_TRACING_ENABLED="false")
os.environ["HOME"] = os.environ["CREWAI_STORAGE_DIR"] = tempfile.mkdtemp(prefix="hashed-crewai-home-")
pytest.importorskip("crewai")

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import BaseTool, tool
from pydantic import Field

from hashed import Hashed, LedgerRecord
from hashed.testing import FrozenClock, make_hashed
from hashed_crewai import uninstrument

PATHS = ["react", "native"]
POLICY = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {min: 0, max: 1000, window: {per: 1d, max_sum: 1500}}}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: reads
    tools: [read_file]
    effect: allow
    rate: {per: 1h, max_calls: 2}
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
"""
FINAL = "Thought: I now know the final answer\nFinal Answer: "


class ScriptedLLM(BaseLLM):
    """An LLM that answers from a script and keeps what it was shown; `native` turns on function calling."""

    script: list[Any] = Field(default_factory=list)
    seen: list[Any] = Field(default_factory=list)
    native: bool = False

    def call(self, messages: Any, tools: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(messages)
        return self.script.pop(0)

    def supports_function_calling(self) -> bool:
        return self.native

    def results(self) -> list[str]:
        """The tool results the model was shown, in order (ReAct observations or tool messages)."""
        out = []
        for message in self.seen[-1]:
            content = str(message.get("content") or "")
            if message.get("role") == "tool":
                out.append(content)
            elif message.get("role") == "assistant" and "\nObservation: " in content:
                out.append(content.split("\nObservation: ", 1)[1])
        return out


def script(path: str, *turns: list[tuple[str, dict[str, Any]]], final: str = "done") -> ScriptedLLM:
    """A model asking for each turn's tool calls, then answering `final`. ReAct asks for one call per turn."""
    answers: list[Any] = []
    for n, turn in enumerate(turns):
        if path == "native":
            answers.append(
                [
                    {
                        "id": f"call_{n}_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                    for i, (name, args) in enumerate(turn)
                ]
            )
        else:
            answers += [f"Thought: I must.\nAction: {name}\nAction Input: {json.dumps(args)}" for name, args in turn]
    answers.append(final if path == "native" else FINAL + final)
    return ScriptedLLM(model="scripted", script=answers, native=path == "native")


@dataclasses.dataclass
class Toolbox:
    """Tools whose bodies log every run to `executed` (name, arguments, thread); `raises` makes them fail."""

    executed: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    threads: set[str] = dataclasses.field(default_factory=set)
    raises: BaseException | None = None

    def _body(self, name: str, **kwargs: Any) -> str:
        self.executed.append((name, kwargs))
        self.threads.add(threading.current_thread().name)
        if self.raises is not None:
            raise self.raises
        return f"{name} done"

    def tools(self) -> dict[str, BaseTool]:
        @tool("transfer_money")
        def transfer_money(to: str, amount: float) -> str:
            """Send money to an account."""
            return self._body("transfer_money", to=to, amount=amount)

        @tool("delete_file")
        def delete_file(path: str) -> str:
            """Delete a file."""
            return self._body("delete_file", path=path)

        @tool("read_file")
        def read_file(path: str, encoding: str = "utf-8") -> str:
            """Read a file."""
            return self._body("read_file", path=path, encoding=encoding)

        return {t.name: t for t in (transfer_money, delete_file, read_file)}


def crew(llm: ScriptedLLM, tools: list[BaseTool], *, role: str = "billing-bot", task: str = "pay") -> Crew:
    agent = Agent(role=role, goal="Pay the bills.", backstory="A careful clerk.", llm=llm, tools=tools, max_iter=8)
    return Crew(agents=[agent], tasks=[Task(name=task, description="Pay.", expected_output="Done.", agent=agent)])


def records(hashed: Hashed) -> list[LedgerRecord]:
    hashed.flush()
    return list(hashed.ledger.records())


def decisions(hashed: Hashed) -> list[tuple[str, str]]:
    """(tool, effect) of every decision record, in ledger order."""
    return [(r.body["tool"], r.body["effect"]) for r in records(hashed) if r.kind == "decision"]


def assert_verifies(hashed: Hashed) -> None:
    report = hashed.verify()
    assert report.ok, report.error
    assert report.unsigned == 0


@dataclasses.dataclass(frozen=True)
class Kit:
    """What the tests share (tests never import each other, so helpers come through this fixture)."""

    script: Callable[..., ScriptedLLM] = script
    crew: Callable[..., Crew] = crew
    records: Callable[[Hashed], list[LedgerRecord]] = records
    decisions: Callable[[Hashed], list[tuple[str, str]]] = decisions
    assert_verifies: Callable[[Hashed], None] = assert_verifies


@pytest.fixture
def kit() -> Kit:
    return Kit()


@pytest.fixture
def toolbox() -> Toolbox:
    return Toolbox()


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    """The tool-calling path: ReAct text or native function calling."""
    return str(request.param)


@pytest.fixture
def guarded(tmp_path: Path, hashed_clock: FrozenClock) -> Iterator[Hashed]:
    """A real offline Hashed with the POLICY above, guarding every CrewAI tool of the process."""
    from hashed_crewai import instrument

    with make_hashed(tmp_path / ".hashed", policy=POLICY, clock=hashed_clock) as hashed:
        instrument(hashed)
        yield hashed


@pytest.fixture(autouse=True)
def _never_left_instrumented() -> Iterator[None]:
    yield
    uninstrument()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ["CREWAI_STORAGE_DIR"], ignore_errors=True)  # the throw-away HOME made above


def pytest_configure(config: pytest.Config) -> None:
    # CrewAI 1.15 reads its own deprecated fields (function_calling_llm, allow_code_execution, multimodal, ...)
    # while it builds every Agent and Crew: warnings about CrewAI's code, not ours.
    config.addinivalue_line("filterwarnings", r"ignore::DeprecationWarning:crewai\.")
