"""Hashed for LangChain 1.x: every tool call an agent or chain makes is checked, signed and recorded.

Install:

    pip install hashed-langchain            # then, in the project: hashed init

The one added line (an agent; a refused call becomes a `ToolMessage` the model sees, and the run goes on):

    from hashed_langchain import HashedMiddleware
    agent = create_agent(model, tools, middleware=[HashedMiddleware()])

Chains and direct tool use (a refused tool raises `hashed.PolicyDenied`; its body never runs):

    tool.invoke(args, config={"callbacks": [HashedCallbackHandler()]})

Zero-code: `hashed run -- python agent.py` (or `hashed.instrument()` first thing) guards every LangChain tool
run in the process, however it starts: `create_agent`, `create_react_agent`, a `StateGraph` with `ToolNode`,
chains, direct `tool.invoke`, and tools calling tools. See docs/frameworks/langchain.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hashed_langchain._plugin import instrument, uninstrument
from hashed_langchain._version import __version__

if TYPE_CHECKING:
    from hashed_langchain._callbacks import HashedCallbackHandler
    from hashed_langchain._hooks import HashedMiddleware

__all__ = ["HashedCallbackHandler", "HashedMiddleware", "__version__", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    # The hooks import LangChain (about a second); the entry point imports this package, so they load on first use.
    if name == "HashedMiddleware":
        from hashed_langchain._hooks import HashedMiddleware

        return HashedMiddleware
    if name == "HashedCallbackHandler":
        from hashed_langchain._callbacks import HashedCallbackHandler

        return HashedCallbackHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
