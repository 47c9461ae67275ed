"""The shared adapter contract, on real `AssistantAgent` runs driven by AutoGen's replay model client.

The one added line is `guard_tools(...)`; `installed=True` runs a plain agent under `instrument()`. Not expressed:
a bare single input (AutoGen hands a tool a JSON object, never a lone value) and a change of the arguments after
the guard (nothing in AutoGen sits between `run_json` and the tool's `run`). Strict mode: a tool's exception never
leaves `AssistantAgent.run()` in AutoGen (its workbench turns it into an error result), so `PolicyDenied` leaves the
run only under the zero-code patch; with `guard_tools` alone the model sees the refusal as an error result.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_core.tools import BaseTool, FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

from hashed import Hashed, PolicyDenied
from hashed.testing.contract import AdapterContract, HarnessRun
from hashed_autogen import guard_tools, instrument, uninstrument

INFO = ModelInfo(vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False)


class AutoGenHarness:
    framework = "autogen"

    def _tools(
        self, hashed: Hashed | None, run: HarnessRun, tool_raises: BaseException | None
    ) -> list[BaseTool[Any, Any]]:
        def body(**kwargs: Any) -> str:
            run.executed.append(kwargs)
            if tool_raises is not None:
                raise tool_raises
            return "done"

        async def transfer_money(to: str, amount: float) -> str:
            return body(to=to, amount=amount)

        async def delete_file(path: str) -> str:
            return body(path=path)

        async def run_query(sql: str, database: str = "prod") -> str:
            return body(sql=sql, database=database)

        async def write_file(path: str) -> str:
            return body(path=path)

        async def relay(path: str) -> str:
            body(path=path)
            try:
                return str(await tools["delete_file"].run_json({"path": path}, CancellationToken(), call_id="call-0"))
            except PolicyDenied as exc:
                return str(exc)

        plain = [
            FunctionTool(f, description=f.__name__) for f in (transfer_money, delete_file, run_query, write_file, relay)
        ]
        guarded = plain if hashed is None else guard_tools(plain, hashed, agent="contract")
        tools = {t.name: t for t in guarded}
        return guarded

    def _run(self, hashed: Hashed | None, calls: list[tuple[str, dict[str, Any]]], tool_raises=None) -> HarnessRun:
        run = HarnessRun()
        function_calls = [
            FunctionCall(id=f"call-{i}", name=n, arguments=json.dumps(a)) for i, (n, a) in enumerate(calls)
        ]
        usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        script = [CreateResult(finish_reason="function_calls", content=function_calls, usage=usage, cached=False), "ok"]
        client = ReplayChatCompletionClient(script, model_info=INFO)
        agent = AssistantAgent("contract", model_client=client, tools=self._tools(hashed, run, tool_raises))
        try:
            task = asyncio.run(asyncio.wait_for(agent.run(task="go"), 30))
        except Exception as exc:
            run.error = exc
            return run
        seen = [r for m in task.messages if isinstance(m, ToolCallExecutionEvent) for r in m.content]
        run.tool_result = seen[0].content if seen else None
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
        return self._run(None if installed else hashed, [(tool, args)], tool_raises)

    def run_parallel(self, hashed: Hashed, calls: list[tuple[str, dict[str, Any]]]) -> HarnessRun:
        return self._run(hashed, calls)

    def install(self, hashed: Hashed) -> None:
        instrument(hashed)

    def uninstall(self) -> None:
        uninstrument()


class TestAutoGenContract(AdapterContract):
    @pytest.fixture
    def harness(self) -> AutoGenHarness:
        return AutoGenHarness()

    def test_strict_mode_raises_policy_denied(self, harness: AutoGenHarness, guarded: Hashed) -> None:
        """AutoGen's own rule: a tool's exception is an error result. Under the patch, strict mode ends the run."""
        guarded.settings = guarded.settings.model_copy(update={"strict": True})
        public = harness.run(guarded, "delete_file", {"path": "/tmp/x"})
        assert (public.executed, public.error) == ([], None)
        assert public.tool_result == "delete_file denied by policy (rule no-delete): Agents never delete files."
        harness.install(guarded)
        try:
            patched = harness.run(guarded, "delete_file", {"path": "/tmp/x"}, installed=True)
        finally:
            harness.uninstall()
        assert patched.executed == []
        assert isinstance(patched.error, PolicyDenied), patched.error
