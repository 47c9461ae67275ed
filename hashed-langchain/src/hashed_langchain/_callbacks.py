"""`HashedCallbackHandler`: LangChain callbacks asking `Hashed.check` before every tool a chain or a caller runs.

Importing this module registers the handler with LangChain's configure hook: every run then gets one while the
environment variable `HASHED_LANGCHAIN` is set (LangChain reads it, not Hashed). The module imports only
LangChain's callback base and tracing context, because `instrument()` may import it in the middle of LangChain's own
import (right after `langchain_core.tracers.context` loads, which older langchain-core does half-way through
`langchain_core.callbacks.manager`); the translation helpers load at the first tool run.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks.base import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from hashed.adapters import current, outcome, started

if TYPE_CHECKING:
    from uuid import UUID

    from hashed import Decision, Hashed

__all__ = ["ENV_VAR", "HashedCallbackHandler", "guarded_call"]

ENV_VAR = "HASHED_LANGCHAIN"

# The id of the tool call HashedMiddleware is running in this thread or task, so that a callback handler on the
# same run does not check, count and record that call a second time.
guarded_call: ContextVar[str | None] = ContextVar("hashed_langchain_guarded_call", default=None)


class HashedCallbackHandler(BaseCallbackHandler):
    """Checks every tool a chain or a direct `tool.invoke` runs; a refused tool raises `PolicyDenied`.

    A callback can stop a tool only by raising, hence `raise_error = True` and a sync handler (LangChain swallows an
    async handler's error for sync tools). In an agent prefer `HashedMiddleware`, or add LangChain's
    `ToolErrorMiddleware` (langchain 1.4+) to hand `PolicyDenied` to the model as the tool's result.

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
        from hashed_langchain._translate import callback_call

        tool_call_id = kwargs.get("tool_call_id")
        if tool_call_id is not None and guarded_call.get() == str(tool_call_id):
            return  # HashedMiddleware already guards this very call
        call = callback_call(
            serialized,
            input_str,
            inputs=inputs,
            metadata=metadata,
            name=kwargs.get("name"),
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
        from hashed_langchain._translate import result_outcome

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
