"""`HashedMiddleware`: LangChain 1.x agents' native tool-call hook, asking `Hashed.check` before every tool call."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from langchain.agents.middleware import AgentMiddleware

from hashed.adapters import current, outcome, started
from hashed_langchain._callbacks import guarded_call
from hashed_langchain._translate import refusal, request_call, result_outcome

if TYPE_CHECKING:
    from langchain_core.messages import ToolMessage
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command

    from hashed import Hashed, ToolCall

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
    """Checks every tool call of a `create_agent` agent; a refused call's `ToolMessage` tells the model why.

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

    def _translate(self, request: ToolCallRequest) -> tuple[Hashed, ToolCall]:
        runtime = request.runtime
        config = getattr(runtime, "config", None) or {}
        return (self.hashed or current()), request_call(request.tool_call, config.get("metadata"), self.agent)

    @signature_ready
    def wrap_tool_call(self, request: ToolCallRequest, handler: Handler) -> ToolMessage | Command[Any]:
        """Check the call; run it and record its outcome if allowed, else return the refusal (raise in strict mode)."""
        hashed, call = self._translate(request)
        decision = hashed.check(call)
        if not decision.allowed:
            hashed.raise_if_strict(decision, call)
            return refusal(request.tool_call, decision)
        start, token = started(), guarded_call.set(call.call_id)
        try:
            result = handler(request)
        except BaseException as exc:
            hashed.record(decision, outcome(start, error=exc))
            raise
        finally:
            guarded_call.reset(token)
        hashed.record(decision, result_outcome(start, result))
        return result

    async def awrap_tool_call(self, request: ToolCallRequest, handler: AsyncHandler) -> ToolMessage | Command[Any]:
        """`wrap_tool_call` for `ainvoke`/`astream`: waiting for an approval never blocks the event loop."""
        hashed, call = self._translate(request)
        decision = await hashed.acheck(call)
        if not decision.allowed:
            hashed.raise_if_strict(decision, call)
            return refusal(request.tool_call, decision)
        start, token = started(), guarded_call.set(call.call_id)
        try:
            result = await handler(request)
        except BaseException as exc:
            hashed.record(decision, outcome(start, error=exc))
            raise
        finally:
            guarded_call.reset(token)
        hashed.record(decision, result_outcome(start, result))
        return result
