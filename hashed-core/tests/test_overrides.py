"""`hashed.adapters.Overrides`: a tool class's own `run` is wrapped; a run already decided is told from a new one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from hashed.adapters import Overrides


def test_an_override_made_before_or_after_install_is_decided_once_per_run_and_a_recursive_run_again():
    class Tool(BaseModel):
        """A framework's tool base class: its `run` is where the adapter decides."""

        name: str = "tool"

        def run(self, n: int) -> list[str]:
            return [f"{self.name}:{n}"]

    class Before(Tool):
        def run(self, n: int) -> list[str]:  # goes on through super(): the same run
            return ["before", *super().run(n)]

    decided: list[tuple[str, int]] = []

    def wrap(run: Callable[..., Any], owner: type) -> Callable[..., Any]:  # what an adapter's wrapper does
        def guarded(self: Tool, n: int) -> Any:
            if overrides.inside.get() is not None and overrides.within(self, owner, "run"):
                return run(self, n)
            decided.append((owner.__name__, n))
            token = overrides.enter(self, owner, "run")
            try:
                return run(self, n)
            finally:
                overrides.inside.reset(token)

        return guarded

    overrides = Overrides(Tool, {"run": wrap}, "test")
    Tool.run = overrides.made(wrap(Tool.__dict__["run"], Tool))  # type: ignore[method-assign]
    overrides.install()
    overrides.install()  # idempotent: nothing wrapped twice

    class After(Tool):
        def run(self, n: int) -> list[str]:  # calls itself once: a second run, decided on its own
            return [*self.run(n - 1), "after"] if n > 0 else super().run(n)

    class Static(Tool):
        run = staticmethod(lambda n: ["static"])  # not called with the tool as self: left as it is

    assert Static().run(1) == ["static"]
    assert Before().run(1) == ["before", "tool:1"]
    assert After().run(1) == ["tool:0", "after"]
    assert Tool().run(2) == ["tool:2"]
    assert decided == [("Before", 1), ("After", 1), ("After", 0), ("Tool", 2)]
