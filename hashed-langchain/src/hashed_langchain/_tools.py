"""Where LangChain tool calls are decided: `BaseTool.run` and `BaseTool.arun`, every tool's way to its body.

`create_agent`, `create_react_agent`, a `StateGraph` with a `ToolNode`, chains, `tool.invoke`/`ainvoke`/`batch`,
and a tool calling another tool all run a tool through these two methods. Deciding there, on the very input the
tool is about to parse, is as late as LangChain allows: whatever a middleware or a chain did to the arguments
before, the decision is about what runs, and each run is decided once (nested runs too).

The wrapper is installed once per process and does nothing unless the run is in scope: inside a
`HashedMiddleware`'s tool call, in a run given a `HashedCallbackHandler`, or everywhere after `instrument()`.
A refused model tool call (one with a tool call id) answers with a `ToolMessage` (status error) so the agent
goes on; a refused direct call raises `PolicyDenied`. A tool class that overrides `run` or `arun` itself would
bypass the wrapper: it is named in a warning as soon as the wrapper and the class both exist.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from langchain_core.tools.base import BaseTool  # the module, not the package: may load while it imports

from hashed.adapters import PolicyDenied, aexecute, current, execute, unique_id
from hashed_langchain._callbacks import HashedCallbackHandler
from hashed_langchain._translate import FRAMEWORK, arguments, identity, parse, read_outcome, refusal

if TYPE_CHECKING:
    from hashed import Decision, Hashed, ToolCall

__all__ = ["Scope", "activate", "deactivate", "install", "scope"]

_log = logging.getLogger("hashed.langchain")


class Scope(NamedTuple):
    """Who guards the tool runs in a context: the `Hashed` to ask (None: the default) and the agent's name."""

    hashed: Hashed | None
    agent: str | None = None


scope: ContextVar[Scope | None] = ContextVar("hashed_langchain_scope", default=None)
# The tool, input and parse a decision was made on, until the tool's run asks for its parse (once).
_parsed: ContextVar[tuple[BaseTool, Any, Any] | None] = ContextVar("hashed_langchain_parsed", default=None)


class _State:
    """What `install` and `activate` set up, process-wide."""

    run: Callable[..., Any] | None = None  # LangChain's own methods, once wrapped
    arun: Callable[..., Any] | None = None
    everywhere: Scope | None = None  # instrument(): every tool run in the process


def activate(hashed: Hashed | None) -> None:
    """Guard every tool run in this process (`instrument()`); installs the wrapper if needed."""
    install()
    _State.everywhere = Scope(hashed)


def deactivate() -> None:
    """Stop guarding tool runs outside a middleware or a callback handler's scope."""
    _State.everywhere = None


def _in_scope(tool: BaseTool, callbacks: Any) -> Scope | None:
    found = scope.get()
    if found is not None:
        return found
    handler = _handler(callbacks) or _handler(tool.callbacks)
    if handler is not None:
        return Scope(handler.hashed)
    return _State.everywhere


def _handler(callbacks: Any) -> HashedCallbackHandler | None:
    handlers: Iterable[Any] = getattr(callbacks, "handlers", None) or (callbacks if isinstance(callbacks, list) else ())
    for handler in handlers:
        if isinstance(handler, HashedCallbackHandler):
            return handler
    return None


def _raise(decision: Decision, call: ToolCall) -> Any:
    raise PolicyDenied(decision, call)  # a direct call has no model to tell: its caller learns it this way


def install() -> None:
    """Wrap `BaseTool.run` and `BaseTool.arun` (once per process; inert outside a scope).

    The decision is made on the tool's own parse of the input, which is then handed to the tool body as it is:
    LangChain's `_to_args_and_kwargs` is wrapped to return that very parse instead of parsing a second time.
    """
    if _State.run is not None:
        return
    run, arun, parse_input = BaseTool.run, BaseTool.arun, BaseTool._to_args_and_kwargs

    def prepare(tool: BaseTool, tool_input: Any, kwargs: dict[str, Any], found: Scope, coroutine: bool) -> Any:
        call_id = kwargs.get("tool_call_id")
        if call_id is None and kwargs.get("run_id") is None:  # a direct call: LangChain's run id names it
            kwargs["run_id"] = unique_id()

        def bound() -> dict[str, Any]:
            parsed = parse(tool, tool_input, call_id)
            _parsed.set((tool, tool_input, parsed))  # the body gets this very parse (see `parsed_once`)
            return arguments(tool, parsed, coroutine=coroutine)

        return {
            "arguments": bound,
            "framework": FRAMEWORK,
            "call_id": call_id or kwargs.get("run_id"),
            "refuse": _raise if call_id is None else refusal(call_id, tool.name),
            "outcome": read_outcome,
            **identity(kwargs.get("config"), found.agent),
        }

    @functools.wraps(run)
    def guarded_run(self: BaseTool, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        found = _in_scope(self, kwargs.get("callbacks", args[3] if len(args) > 3 else None))
        if found is None:
            return run(self, tool_input, *args, **kwargs)
        how = prepare(self, tool_input, kwargs, found, coroutine=False)
        try:
            return execute(found.hashed or current(), self.name, lambda: run(self, tool_input, *args, **kwargs), **how)
        finally:
            _parsed.set(None)  # never left for another run (a refused call's parse was not taken)

    @functools.wraps(arun)
    async def guarded_arun(self: BaseTool, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        found = _in_scope(self, kwargs.get("callbacks", args[3] if len(args) > 3 else None))
        if found is None:
            return await arun(self, tool_input, *args, **kwargs)
        how = prepare(self, tool_input, kwargs, found, coroutine=True)
        body = lambda: arun(self, tool_input, *args, **kwargs)  # noqa: E731 - the continuation, awaited once
        try:
            return await aexecute(found.hashed or current(), self.name, body, **how)
        finally:
            _parsed.set(None)

    @functools.wraps(parse_input)
    def parsed_once(self: BaseTool, tool_input: Any, tool_call_id: str | None) -> Any:
        decided = _parsed.get()
        if decided is not None and decided[0] is self and decided[1] is tool_input:
            _parsed.set(None)
            return decided[2]
        return parse_input(self, tool_input, tool_call_id)

    _State.run, _State.arun = run, arun
    BaseTool.run = guarded_run  # type: ignore[method-assign]
    BaseTool.arun = guarded_arun  # type: ignore[method-assign]
    BaseTool._to_args_and_kwargs = parsed_once  # type: ignore[method-assign]
    for cls in _subclasses(BaseTool):
        _warn_if_bypassing(cls)
    original = BaseTool.__dict__.get("__pydantic_init_subclass__")

    def init_subclass(cls: type[BaseTool], /, **kwargs: Any) -> None:
        if original is not None:
            original.__func__(cls, **kwargs)
        else:
            super(BaseTool, cls).__pydantic_init_subclass__(**kwargs)
        _warn_if_bypassing(cls)

    BaseTool.__pydantic_init_subclass__ = classmethod(init_subclass)  # type: ignore[assignment,method-assign]


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    out: list[type[Any]] = []
    subs: list[type[Any]] = cls.__subclasses__()
    for sub in subs:
        out += [sub, *_subclasses(sub)]
    return out


def _warn_if_bypassing(cls: type) -> None:
    """Say, once, when a tool class runs its body without going through `BaseTool.run`/`arun`."""
    overrides = [name for name in ("run", "arun") if name in cls.__dict__]
    if overrides:
        message = (
            f"hashed: tool class {cls.__module__}.{cls.__qualname__} overrides {' and '.join(overrides)}, so Hashed "
            "cannot guard its tools where LangChain runs them: guard the function its body calls with @hashed.guard"
        )
        _log.warning("%s", message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
