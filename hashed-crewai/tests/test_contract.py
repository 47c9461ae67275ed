"""The shared adapter contract, on real crews driven by a scripted LLM, on the ReAct and the native path each.

The adapter's one added line is `guard_tool(tool, hashed)` on every tool of the agent; `installed=True` runs plain
tools under `instrument(hashed)`, the zero-code path.
"""

from __future__ import annotations

from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.hooks import register_before_tool_call_hook, unregister_before_tool_call_hook
from crewai.tools import BaseTool, tool

from hashed import Hashed
from hashed.testing.contract import AdapterContract, HarnessRun
from hashed_crewai import guard_tool, instrument, uninstrument


class SelfRunning(BaseTool):
    """A user's tool class that runs its body itself: its `run` overrides CrewAI's `BaseTool.run`."""

    inner: Any

    def _run(self, **kwargs: Any) -> Any:
        return self.inner.func(**kwargs)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(**kwargs)

    @classmethod
    def of(cls, tool: BaseTool) -> SelfRunning:
        return cls(name=tool.name, description=tool.description, args_schema=tool.args_schema, inner=tool)


class CrewAIHarness:
    framework = "crewai"

    def __init__(self, path: str, kit: Any) -> None:
        self.path = path
        self.kit = kit

    def _tools(
        self,
        run: HarnessRun,
        hashed: Hashed | None,
        tool_raises: BaseException | None = None,
        overriding: bool = False,
    ) -> dict[str, Any]:
        def body(**kwargs: Any) -> str:
            run.executed.append(kwargs)
            if tool_raises is not None:
                raise tool_raises
            return "done"

        @tool("transfer_money")
        def transfer_money(to: str, amount: float) -> str:
            """Send money."""
            return body(to=to, amount=amount)

        @tool("delete_file")
        def delete_file(path: str) -> str:
            """Delete a file."""
            return body(path=path)

        @tool("run_query")
        def run_query(sql: str, database: str = "prod") -> str:
            """Run SQL."""
            return body(sql=sql, database=database)

        @tool("write_file")
        def write_file(path: str) -> str:
            """Write a file."""
            return body(path=path)

        @tool("relay")
        def relay(path: str) -> str:
            """Ask another tool to delete a file."""
            body(path=path)
            return str(tools["delete_file"].run(path=path))

        tools: dict[str, BaseTool] = {t.name: t for t in (transfer_money, delete_file, run_query, write_file, relay)}
        if hashed is not None:
            tools = {name: guard_tool(t, hashed) for name, t in tools.items()}
        if overriding:
            tools = {name: SelfRunning.of(t) for name, t in tools.items()}
        return tools

    def _kickoff(
        self,
        hashed: Hashed,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        installed: bool = False,
        tool_raises: BaseException | None = None,
        concurrently: bool = False,
        overriding: bool = False,
    ) -> HarnessRun:
        run = HarnessRun()
        tools = list(self._tools(run, None if installed else hashed, tool_raises, overriding).values())
        if concurrently and self.path == "react":  # ReAct asks for one call per turn: concurrent tasks instead
            llms = [self.kit.script(self.path, [call]) for call in calls]
        else:
            llms = [
                self.kit.script(self.path, calls) if concurrently else self.kit.script(self.path, *[[c] for c in calls])
            ]
        agents = [Agent(role="agent", goal="Work.", backstory="A worker.", llm=llm, tools=tools) for llm in llms]
        last = len(agents) - 1
        tasks = [
            Task(description="Work.", expected_output="Done.", agent=a, async_execution=i < last)
            for i, a in enumerate(agents)
        ]
        try:
            Crew(agents=agents, tasks=tasks).kickoff()
        except Exception as exc:
            run.error = exc
        results = [result for llm in llms if llm.seen for result in llm.results()]
        run.tool_result = results[0] if results else None
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
        return self._kickoff(hashed, [(tool, args)], installed=installed, tool_raises=tool_raises)

    def run_rewritten(self, hashed: Hashed, tool: str, args: dict[str, Any], rewritten: dict[str, Any]) -> HarnessRun:
        def rewrite(ctx: Any) -> None:
            ctx.tool_input.update(rewritten)  # in place, as CrewAI documents it

        register_before_tool_call_hook(rewrite)  # after Hashed's own hook
        try:
            return self._kickoff(hashed, [(tool, args)])
        finally:
            unregister_before_tool_call_hook(rewrite)

    def run_parallel(self, hashed: Hashed, calls: list[tuple[str, dict[str, Any]]]) -> HarnessRun:
        return self._kickoff(hashed, calls, concurrently=True)

    def run_overriding(self, hashed: Hashed, tool: str, args: dict[str, Any]) -> HarnessRun:
        instrument(hashed)
        try:
            return self._kickoff(hashed, [(tool, args)], installed=True, overriding=True)
        finally:
            uninstrument()

    def run_single_input(self, hashed: Hashed, tool: str, value: str) -> HarnessRun:
        run = HarnessRun()
        run.tool_result = str(self._tools(run, hashed)[tool].run(value))  # `BaseTool.run` with a lone input
        return run

    def install(self, hashed: Hashed) -> None:
        instrument(hashed)

    def uninstall(self) -> None:
        uninstrument()


class TestCrewAIContract(AdapterContract):
    @pytest.fixture(params=["react", "native"])
    def harness(self, request: pytest.FixtureRequest, kit: Any) -> CrewAIHarness:
        return CrewAIHarness(request.param, kit)

    def test_tool_error_is_recorded_with_its_type(self, harness: CrewAIHarness, guarded: Hashed) -> None:
        if harness.path == "native":
            super().test_tool_error_is_recorded_with_its_type(harness, guarded)
            return
        # CrewAI's ReAct path runs a failing tool again in place (6 runs in crewai 1.15). Each run is decided, so
        # the contract's rate window (3 an hour) refuses the fourth: the last record is that refusal, not an outcome.
        run = harness.run(
            guarded, "transfer_money", {"to": "acct-9", "amount": 5}, tool_raises=ValueError("bank is down")
        )
        records = self.kit_records(guarded)
        outcomes = [r for r in records if r.kind == "outcome"]
        assert len(outcomes) == len(run.executed) == 3
        assert {(o.body["status"], o.body["error"]) for o in outcomes} == {("error", "ValueError: bank is down")}
        assert [r.body["effect"] for r in records if r.kind == "decision"] == ["allow"] * 3 + ["deny"]
        assert run.tool_result is not None and run.tool_result.startswith("transfer_money denied by policy")

    @staticmethod
    def kit_records(hashed: Hashed) -> list[Any]:
        hashed.flush()
        return list(hashed.ledger.records())
