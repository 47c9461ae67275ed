"""Hashed for Strands Agents: every tool call an agent makes is checked, signed and recorded, in process.

Install:

    pip install hashed-strands              # then, in the project: hashed init

The one added line (a refused call becomes the tool's error result, which the model sees, and the run goes on):

    from hashed_strands import HashedHookProvider
    agent = Agent(model=model, tools=tools, hooks=[HashedHookProvider()])

Approvals in the app: with `HashedHookProvider(approvals="interrupt")` a call that needs a person stops the agent
with a Strands interrupt named `hashed-approval`; resume with the answer, which the ledger keeps signed:

    result = agent("pay the invoice")
    if result.stop_reason == "interrupt":
        agent([respond(i, approve=True, by="alice") for i in result.interrupts])

Zero-code: `hashed run -- python agent.py` (or `HASHED_INSTRUMENT=1`, or `hashed.instrument()` first thing) guards
every `Agent` the program makes, its model's tool calls and direct `agent.tool.x()` calls alike.
See docs/frameworks/strands.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hashed_strands._plugin import instrument, uninstrument
from hashed_strands._version import __version__

if TYPE_CHECKING:
    from hashed_strands._hooks import HashedHookProvider
    from hashed_strands._translate import respond

__all__ = ["HashedHookProvider", "__version__", "instrument", "respond", "uninstrument"]


def __getattr__(name: str) -> Any:
    # These import Strands (about half a second); the entry point imports this package, so they load on first use.
    if name == "HashedHookProvider":
        from hashed_strands._hooks import HashedHookProvider

        return HashedHookProvider
    if name == "respond":
        from hashed_strands._translate import respond

        return respond
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
