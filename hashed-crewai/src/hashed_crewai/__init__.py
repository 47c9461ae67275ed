"""Hashed for CrewAI: every tool call a crew or agent makes is checked, signed and recorded.

Install:

    pip install hashed-crewai               # then, in the project: hashed init

The one added line, before the crew runs (every tool of every agent, crew and flow in the process; a refused call
never runs, the agent sees the refusal as the tool's result and the crew goes on):

    hashed_crewai.instrument()

Or guard chosen tools only (same name, description and arguments):

    agent = Agent(role="billing", goal="...", backstory="...", tools=[guard_tool(transfer_money), search])

Zero-code: `hashed run -- python crew.py` (or `HASHED_INSTRUMENT=1 python crew.py`) does what `instrument()` does,
with no change to the program. See docs/frameworks/crewai.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hashed_crewai._plugin import instrument, uninstrument
from hashed_crewai._version import __version__

if TYPE_CHECKING:
    from hashed_crewai._tools import HashedTool, guard_tool

__all__ = ["HashedTool", "__version__", "guard_tool", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    # These import CrewAI (≈ 2.7 s); the entry point imports this package, so they load on first use.
    if name in ("HashedTool", "guard_tool"):
        from hashed_crewai import _tools

        return getattr(_tools, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
