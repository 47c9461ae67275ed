"""What an adapter's contract harness is: the policy every run is decided under, and the harness interface.

`contract.py` holds the cases (`AdapterContract`) and re-exports these names; an adapter imports them from there.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from hashed._core import Hashed

__all__ = ["CONTRACT_POLICY", "AdapterHarness", "HarnessRun"]

CONTRACT_POLICY = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000}}
    rate: {per: 1h, max_calls: 3}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
  - id: queries
    tools: [run_query]
    effect: allow
  - id: no-prod
    tools: [run_query]
    effect: deny
    when: {database: {eq: prod}}
    reason: Agents never touch the production database.
  - id: writes
    tools: [write_file]
    effect: allow
  - id: no-etc
    tools: [write_file]
    effect: deny
    when: {path: {matches: "^/etc"}}
    reason: Agents never write to /etc.
  - id: relays
    tools: [relay]
    effect: allow
"""


@dataclasses.dataclass
class HarnessRun:
    """What one agent run did.

    Attributes:
        executed: the arguments of every tool body that actually ran, in order.
        tool_result: the text the model was given as the tool's result (None if it got none).
        error: the exception that escaped the run, if one did.
    """

    executed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tool_result: str | None = None
    error: BaseException | None = None


class AdapterHarness(Protocol):
    """Drives one framework's real agent loop offline.

    Optional methods (leave them out when the framework cannot express the case; it is then skipped):

    - `run_single_input(hashed, tool, value) -> HarnessRun`: run `tool` with one bare input (a string), the way
      the framework passes a lone input to a one-parameter tool.
    - `run_rewritten(hashed, tool, args, rewritten) -> HarnessRun`: the model asks for `tool(**args)`, and
      something in the framework that runs after the guard's hook (a later middleware, a hook) changes the
      arguments to `rewritten` before the tool runs.
    - `run_parallel(hashed, calls) -> HarnessRun`: the model asks for several tool calls at once
      (`calls`: a list of `(tool, args)`), which the framework runs concurrently.
    - `run_overriding(hashed, tool, args) -> HarnessRun`: like `run` in the zero-code path, but every tool is of a
      user's class that overrides the framework's own method for running a tool and calls its body itself (so
      `relay`'s nested call goes through such a tool too).

    Example:
        run = harness.run(hashed, "transfer_money", {"to": "acct-9", "amount": 50})
        assert run.executed == [{"to": "acct-9", "amount": 50}]
    """

    framework: str

    def run(
        self,
        hashed: Hashed,
        tool: str,
        args: dict[str, Any],
        *,
        tool_raises: BaseException | None = None,
        installed: bool = False,
    ) -> HarnessRun:
        """Run an agent whose model calls `tool(**args)` once, guarded through the adapter's one added line.

        With `installed=True` the agent is built with no Hashed code at all and relies on `install()` having
        run (the zero-code path).
        """
        ...

    def install(self, hashed: Hashed) -> None:
        """Guard the framework process-wide (what `hashed.instrument()` does for this adapter)."""
        ...

    def uninstall(self) -> None:
        """Undo `install`."""
        ...
