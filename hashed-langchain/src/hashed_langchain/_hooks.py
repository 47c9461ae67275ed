"""`HashedMiddleware`: guards the tool calls of a `create_agent` agent; each is decided where the tool runs.

The middleware only opens a scope around the rest of the tool call (`_tools.py` decides, on the input the tool
is about to parse): so a middleware after this one that rewrites the arguments changes what is decided, never
what runs after a decision, and a tool that calls another tool inside the call has that call decided too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from langchain.agents.middleware import AgentMiddleware

from hashed_langchain._tools import Scope, install, scope

if TYPE_CHECKING:
    from langchain_core.messages import ToolMessage
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command

    from hashed import Hashed

__all__ = ["HashedMiddleware"]

Handler = Callable[["ToolCallRequest"], "ToolMessage | Command[Any]"]
AsyncHandler = Callable[["ToolCallRequest"], Awaitable["ToolMessage | Command[Any]"]]
M = TypeVar("M", bound=Callable[..., Any])


class _SignatureReady:
    """A method whose bound form is a partial carrying its signature, so `inspect.signature` answers at once.

    `create_agent` wraps every middleware hook in LangSmith's `traceable`, which calls `inspect.signature` on the
    sync hook at every call, tracing on or off (the async one only once): ≈ 15 µs of the wrapper's 35 µs for a bound
    method in a warm loop, ≈ 30 µs in an agent loop (docs/performance.md). `inspect` reads `__signature__` first,
    so LangSmith sees the very signature it would have computed.
    """

    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method
        self._signature: inspect.Signature | None = None

    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., Any]:
        if instance is None:
            return self._method
        if self._signature is None:
            self._signature = inspect.signature(self._method.__get__(instance, owner))
        bound = functools.partial(self._method, instance)
        bound.__signature__ = self._signature  # type: ignore[attr-defined]
        return bound


def signature_ready(method: M) -> M:
    """Mark a middleware's sync hook so LangChain's tracing wrapper need not compute its signature at each call."""
    return cast("M", _SignatureReady(method))


class HashedMiddleware(AgentMiddleware):
    """Guards every tool call of a `create_agent` agent; a refused call's `ToolMessage` tells the model why.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.
        agent: the agent name for the policy's `agents` globs; default: `create_agent(name=...)`, else the settings.

    Example:
        agent = create_agent(model, tools, middleware=[HashedMiddleware()])
    """

    def __init__(self, hashed: Hashed | None = None, *, agent: str | None = None) -> None:
        super().__init__()
        self.hashed = hashed
        self.agent = agent
        install()

    @signature_ready
    def wrap_tool_call(self, request: ToolCallRequest, handler: Handler) -> ToolMessage | Command[Any]:
        """Run the tool call with this middleware's `Hashed` guarding the tool where it runs."""
        token = scope.set(Scope(self.hashed, self.agent))
        try:
            return handler(request)
        finally:
            scope.reset(token)

    async def awrap_tool_call(self, request: ToolCallRequest, handler: AsyncHandler) -> ToolMessage | Command[Any]:
        """`wrap_tool_call` for `ainvoke`/`astream`: waiting for an approval never blocks the event loop."""
        token = scope.set(Scope(self.hashed, self.agent))
        try:
            return await handler(request)
        finally:
            scope.reset(token)
