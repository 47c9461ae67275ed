"""Hashed for AutoGen AgentChat 0.7: every tool call an agent or a team makes is checked, signed and recorded.

Install (`pyautogen` users too: it is the same autogen-agentchat):

    pip install hashed-autogen              # then, in the project: hashed init

The one added line (a refused call is an error result the model sees, and the run goes on):

    from hashed_autogen import guard_tools
    agent = AssistantAgent("billing", model_client=client, tools=guard_tools([transfer_money], agent="billing"))

A workbench, an MCP server's included: `AssistantAgent(..., workbench=HashedWorkbench(mcp_workbench))`.

Zero-code: `hashed run -- python agent.py` (or `HASHED_INSTRUMENT=1`, or `hashed.instrument()` first thing) guards
every `AssistantAgent`'s tool calls, with the agent's own name. See docs/frameworks/autogen.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hashed_autogen._plugin import instrument, uninstrument
from hashed_autogen._version import __version__

if TYPE_CHECKING:
    from hashed_autogen._tools import HashedTool, guard_tools
    from hashed_autogen._workbench import HashedWorkbench

__all__ = ["HashedTool", "HashedWorkbench", "__version__", "guard_tools", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    # These import AutoGen (about 0.3 s); the entry point imports this package, so they load on first use.
    if name in ("HashedTool", "guard_tools"):
        from hashed_autogen import _tools

        return getattr(_tools, name)
    if name == "HashedWorkbench":
        from hashed_autogen._workbench import HashedWorkbench

        return HashedWorkbench
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
