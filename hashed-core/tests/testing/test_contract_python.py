"""The adapter contract, run against plain `@guard`: the core's own "adapter" must pass it too."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hashed import Hashed, Refusal
from hashed.testing.contract import AdapterContract, HarnessRun


class GuardHarness:
    """An "agent" that calls a guarded Python function; the model sees its return value as text."""

    framework = "python"

    def _tools(self, hashed: Hashed, run: HarnessRun, tool_raises: BaseException | None) -> dict[str, Any]:
        def body(**kwargs: Any) -> str:
            run.executed.append(kwargs)
            if tool_raises is not None:
                raise tool_raises
            return "done"

        @hashed.guard
        def transfer_money(to: str, amount: float) -> str:
            return body(to=to, amount=amount)

        @hashed.guard
        def delete_file(path: str) -> str:
            return body(path=path)

        @hashed.guard
        def run_query(sql: str, database: str = "prod") -> str:
            return body(sql=sql, database=database)

        @hashed.guard
        def write_file(path: str) -> str:
            return body(path=path)

        @hashed.guard
        def relay(path: str) -> str:
            body(path=path)
            return str(delete_file(path))  # a tool calling a tool: a refusal comes back as text

        return {f.__name__: f for f in (transfer_money, delete_file, run_query, write_file, relay)}

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
        try:
            run.tool_result = str(self._tools(hashed, run, tool_raises)[tool](**args))
        except Exception as exc:
            run.error = exc
        return run

    def run_parallel(self, hashed: Hashed, calls: list[tuple[str, dict[str, Any]]]) -> HarnessRun:
        run = HarnessRun()
        tools = self._tools(hashed, run, None)
        results: list[Any] = []
        barrier = threading.Barrier(len(calls))

        def one(tool: str, args: dict[str, Any]) -> None:
            barrier.wait()
            results.append(tools[tool](**args))

        threads = [threading.Thread(target=one, args=call) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(isinstance(r, Refusal) for r in results) == len(calls) - len(run.executed)
        return run

    def install(self, hashed: Hashed) -> None:
        raise NotImplementedError

    def uninstall(self) -> None:
        raise NotImplementedError


class TestGuardContract(AdapterContract):
    @pytest.fixture
    def harness(self) -> GuardHarness:
        return GuardHarness()

    @pytest.mark.skip(reason="plain @guard has nothing process-wide to install; adapters run this case")
    def test_install_is_idempotent_and_uninstall_stops_guarding(self, harness, guarded):
        raise AssertionError
