"""The shared adapter contract, on real Strands `Agent` loops driven by a scripted model."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from strands import Agent, tool
from strands.hooks import BeforeToolCallEvent
from strands.models.model import Model

from hashed import Hashed
from hashed.testing.contract import AdapterContract, HarnessRun
from hashed_strands import HashedHookProvider, instrument, uninstrument


class _Model(Model):
    """One turn of tool calls (ids call-0, call-1, ...), then a final answer."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls
        self.config: dict[str, Any] = {}

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> Any:
        return self.config

    async def structured_output(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
        yield

    async def stream(self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any) -> Any:
        calls, self.calls = self.calls, []
        yield {"messageStart": {"role": "assistant"}}
        for i, (name, args) in enumerate(calls):
            yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": f"call-{i}"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(args)}}}}
            yield {"contentBlockStop": {}}
        if not calls:
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": "ok"}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "tool_use" if calls else "end_turn"}}


class StrandsHarness:
    framework = "strands"

    def _tools(self, run: HarnessRun, tool_raises: BaseException | None) -> list[Any]:
        def body(**kwargs: Any) -> str:
            run.executed.append(kwargs)
            if tool_raises is not None:
                raise tool_raises
            return "done"

        @tool
        def transfer_money(to: str, amount: float) -> str:
            """Send money."""
            return body(to=to, amount=amount)

        @tool
        def delete_file(path: str) -> str:
            """Delete a file."""
            return body(path=path)

        @tool
        def run_query(sql: str, database: str = "prod") -> str:
            """Run SQL."""
            return body(sql=sql, database=database)

        @tool
        def write_file(path: str) -> str:
            """Write a file."""
            return body(path=path)

        @tool
        def relay(path: str, agent: Agent) -> str:
            """Ask another tool to delete a file (Strands injects the agent)."""
            body(path=path)
            result = agent.tool.delete_file(path=path, record_direct_tool_call=False)
            return str(result["content"][0]["text"])

        return [transfer_money, delete_file, run_query, write_file, relay]

    def _agent_run(
        self,
        hashed: Hashed,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        installed: bool = False,
        tool_raises: BaseException | None = None,
        rewritten: dict[str, Any] | None = None,
    ) -> HarnessRun:
        run = HarnessRun()
        hooks = [] if installed else [HashedHookProvider(hashed)]
        agent = Agent(model=_Model(calls), tools=self._tools(run, tool_raises), hooks=hooks, callback_handler=None)
        if rewritten is not None:  # a hook after Hashed's (same order, registered later) rewrites the arguments

            def rewrite(event: BeforeToolCallEvent) -> None:
                event.tool_use = {**event.tool_use, "input": rewritten}

            order = {"order": math.inf} if "order" in agent.hooks.add_callback.__code__.co_varnames else {}
            agent.hooks.add_callback(BeforeToolCallEvent, rewrite, **order)
        try:
            agent("go")
        except Exception as exc:
            run.error = exc
            return run
        results = [b["toolResult"] for m in agent.messages for b in m["content"] if "toolResult" in b]
        run.tool_result = " ".join(c.get("text", "") for c in results[0]["content"]) if results else None
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
        return self._agent_run(hashed, [(tool, args)], rewritten=rewritten)

    def run_parallel(self, hashed: Hashed, calls: list[tuple[str, dict[str, Any]]]) -> HarnessRun:
        return self._agent_run(hashed, calls)  # Strands' default executor runs one turn's tool calls concurrently

    def install(self, hashed: Hashed) -> None:
        instrument(hashed)

    def uninstall(self) -> None:
        uninstrument()


class TestStrandsContract(AdapterContract):
    @pytest.fixture
    def harness(self) -> StrandsHarness:
        return StrandsHarness()
