"""LangChain's native extension points: an agent middleware and a callback handler, both asking `Hashed.check`.

Importing this module also registers `HashedCallbackHandler` with LangChain's configure hook, so that every
run gets one when the environment variable `HASHED_LANGCHAIN` is set (LangChain reads it, not Hashed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain.agents.middleware import AgentMiddleware
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from hashed.adapters import current, outcome, started
from hashed_langchain._translate import callback_call, refusal, request_call, result_outcome

if TYPE_CHECKING:
    from langchain_core.messages import ToolMessage
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command

    from hashed import Decision, Hashed, ToolCall

__all__ = ["ENV_VAR", "HashedCallbackHandler", "HashedMiddleware"]

ENV_VAR = "HASHED_LANGCHAIN"
Handler = Callable[["ToolCallRequest"], "ToolMessage | Command[Any]"]
AsyncHandler = Callable[["ToolCallRequest"], Awaitable["ToolMessage | Command[Any]"]]

# The tool call id the middleware is running right now (per thread/task), so that a callback handler attached
# to the same run does not check, count and record that call a second time.
_guarded: ContextVar[str | None] = ContextVar("hashed_langchain_guarded", default=None)


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

    def _check(self, request: ToolCallRequest) -> tuple[Hashed, ToolCall]:
        runtime = request.runtime
        config = getattr(runtime, "config", None) or {}
        return (self.hashed or current()), request_call(request.tool_call, config.get("metadata"), self.agent)

    def wrap_tool_call(self, request: ToolCallRequest, handler: Handler) -> ToolMessage | Command[Any]:
        """Check the call; run it and record its outcome if allowed, else return the refusal (raise in strict mode)."""
        hashed, call = self._check(request)
        decision = hashed.check(call)
        if not decision.allowed:
            hashed.raise_if_strict(decision, call)
            return refusal(request.tool_call, decision)
        start, token = started(), _guarded.set(call.call_id)
        try:
            result = handler(request)
        except BaseException as exc:
            hashed.record(decision, outcome(start, error=exc))
            raise
        finally:
            _guarded.reset(token)
        hashed.record(decision, result_outcome(start, result))
        return result

    async def awrap_tool_call(self, request: ToolCallRequest, handler: AsyncHandler) -> ToolMessage | Command[Any]:
        """`wrap_tool_call` for `ainvoke`/`astream`: waiting for an approval never blocks the event loop."""
        hashed, call = self._check(request)
        decision = await hashed.acheck(call)
        if not decision.allowed:
            hashed.raise_if_strict(decision, call)
            return refusal(request.tool_call, decision)
        start, token = started(), _guarded.set(call.call_id)
        try:
            result = await handler(request)
        except BaseException as exc:
            hashed.record(decision, outcome(start, error=exc))
            raise
        finally:
            _guarded.reset(token)
        hashed.record(decision, result_outcome(start, result))
        return result


class HashedCallbackHandler(BaseCallbackHandler):
    """Checks every tool a chain or a direct `tool.invoke` runs; a refused tool raises `PolicyDenied`.

    A callback can only stop a tool by raising (hence `raise_error = True`, and a sync handler: LangChain swallows
    an async handler's error for sync tools). In an agent, prefer `HashedMiddleware`, or add LangChain's
    `ToolErrorMiddleware` (langchain>=1.3) to turn `PolicyDenied` into a message the model sees.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.

    Example:
        tool.invoke({"path": "/x"}, config={"callbacks": [HashedCallbackHandler()]})
    """

    raise_error = True

    def __init__(self, hashed: Hashed | None = None) -> None:
        self.hashed = hashed
        self._running: dict[UUID, tuple[Hashed, Decision, int]] = {}

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Check the tool call; raise `PolicyDenied` (the tool body then never runs) unless it is allowed."""
        tool_call_id = kwargs.get("tool_call_id")
        if tool_call_id is not None and _guarded.get() == str(tool_call_id):
            return  # HashedMiddleware already guards this very call
        name = kwargs.get("name")
        call = callback_call(
            serialized,
            input_str,
            inputs=inputs,
            metadata=metadata,
            name=name,
            tool_call_id=tool_call_id,
            run_id=run_id,
            parent_run_id=parent_run_id,
        )
        hashed = self.hashed or current()
        decision = hashed.check(call)
        if not decision.allowed:
            hashed.raise_if_strict(decision, call, strict=True)
        self._running[run_id] = (hashed, decision, started())

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record the tool's result (a `ToolMessage` with status error counts as an error)."""
        running = self._running.pop(run_id, None)
        if running is not None:
            hashed, decision, start = running
            hashed.record(decision, result_outcome(start, output))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Record the exception the tool raised; LangChain re-raises it unchanged."""
        running = self._running.pop(run_id, None)
        if running is not None:
            hashed, decision, start = running
            hashed.record(decision, outcome(start, error=error))


register_configure_hook(
    ContextVar("hashed_langchain_handler", default=None),
    inheritable=True,
    handle_class=HashedCallbackHandler,
    env_var=ENV_VAR,
)
