"""The adapter contract, run against plain `@guard`: the core's own "adapter" must pass it too."""

from __future__ import annotations

from typing import Any

import pytest

from hashed import Hashed
from hashed.testing.contract import AdapterContract, HarnessRun


class GuardHarness:
    """An "agent" that calls a guarded Python function once; the model sees its return value as text."""

    framework = "python"

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
            return body(to=to, amount=amount)

        def delete_file(path: str) -> str:
            return body(path=path)

        fn = hashed.guard(tool)({"transfer_money": transfer_money, "delete_file": delete_file}[tool])
        try:
            run.tool_result = str(fn(**args))
        except Exception as exc:
            run.error = exc
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
