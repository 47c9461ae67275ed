"""Where LangChain tool calls are decided: `BaseTool.run` and `BaseTool.arun`, every tool's way to its body.

`create_agent`, `create_react_agent`, a `StateGraph` with a `ToolNode`, chains, `tool.invoke`/`ainvoke`/`batch`,
and a tool calling another tool all run a tool through these two methods. Deciding there, on the very input the
tool is about to parse, is as late as LangChain allows: whatever a middleware or a chain did to the arguments
before, the decision is about what runs, and each run is decided once (nested runs too).

The wrapper is installed once per process and does nothing unless the run is in scope: inside a
`HashedMiddleware`'s tool call, in a run given a `HashedCallbackHandler`, or everywhere after `instrument()`.
A refused model tool call (one with a tool call id) answers with a `ToolMessage` (status error) so the agent
goes on; a refused direct call raises `PolicyDenied`. A tool class that overrides `run` or `arun` itself would
run its body past that wrapper: its override is wrapped too, as soon as the wrapper and the class both exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from langchain_core.tools.base import BaseTool  # the module, not the package: may load while it imports

from hashed.adapters import Overrides, PolicyDenied, aexecute, current, execute, unique_id
from hashed_langchain._callbacks import HashedCallbackHandler
from hashed_langchain._translate import FRAMEWORK, arguments, identity, parse, read_outcome, refusal

if TYPE_CHECKING:
    from hashed import Decision, Hashed, ToolCall

__all__ = ["Scope", "activate", "deactivate", "install", "scope"]


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
    A tool class that overrides `run` or `arun` itself gets its own wrapper (when the class is made, or found now).
    """
    if _State.run is not None:
        return
    run, arun, parse_input = BaseTool.run, BaseTool.arun, BaseTool._to_args_and_kwargs

    @functools.wraps(parse_input)
    def parsed_once(self: BaseTool, tool_input: Any, tool_call_id: str | None) -> Any:
        decided = _parsed.get()
        if decided is not None and decided[0] is self and decided[1] is tool_input:
            _parsed.set(None)
            return decided[2]
        return parse_input(self, tool_input, tool_call_id)

    _State.run, _State.arun = run, arun
    BaseTool.run = _guarded_run(run, BaseTool)  # type: ignore[method-assign]
    BaseTool.arun = _guarded_arun(arun, BaseTool)  # type: ignore[method-assign]
    BaseTool._to_args_and_kwargs = parsed_once  # type: ignore[method-assign]
    _overrides.install()


def _prepare(tool: BaseTool, tool_input: Any, kwargs: dict[str, Any], found: Scope, coroutine: bool) -> Any:
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


def _guarded_run(run: Callable[..., Any], owner: type) -> Callable[..., Any]:
    override = owner is not BaseTool  # a user's class: the super().run() it goes on to is the same run

    @functools.wraps(run)
    def guarded_run(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        found = _in_scope(self, kwargs.get("callbacks", args[4] if len(args) > 4 else None))  # its 5th parameter
        if found is None or (_overrides.inside.get() is not None and _overrides.within(self, owner, "run")):
            return run(self, *args, **kwargs)
        tool_input = args[0] if args else kwargs.get("tool_input", {})  # LangChain's run takes it first
        # BaseTool.run's own keywords are read in place (a direct call's run id is added there, for the run to use);
        # a user's override gets its arguments untouched, and the decision reads a copy
        how = _prepare(self, tool_input, dict(kwargs) if override else kwargs, found, coroutine=False)
        inside = _overrides.enter(self, owner, "run") if override else None
        try:
            return execute(found.hashed or current(), self.name, lambda: run(self, *args, **kwargs), **how)
        finally:
            _parsed.set(None)  # never left for another run (a refused call's parse was not taken)
            if inside is not None:
                _overrides.inside.reset(inside)

    return _overrides.made(guarded_run)


def _guarded_arun(arun: Callable[..., Any], owner: type) -> Callable[..., Any]:
    override = owner is not BaseTool

    @functools.wraps(arun)
    async def guarded_arun(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        found = _in_scope(self, kwargs.get("callbacks", args[4] if len(args) > 4 else None))  # its 5th parameter
        if found is None or (_overrides.inside.get() is not None and _overrides.within(self, owner, "arun")):
            return await arun(self, *args, **kwargs)
        tool_input = args[0] if args else kwargs.get("tool_input", {})  # LangChain's run takes it first
        # BaseTool.run's own keywords are read in place (a direct call's run id is added there, for the run to use);
        # a user's override gets its arguments untouched, and the decision reads a copy
        how = _prepare(self, tool_input, dict(kwargs) if override else kwargs, found, coroutine=True)
        body = lambda: arun(self, *args, **kwargs)  # noqa: E731 - the continuation, awaited once
        inside = _overrides.enter(self, owner, "arun") if override else None
        try:
            return await aexecute(found.hashed or current(), self.name, body, **how)
        finally:
            _parsed.set(None)
            if inside is not None:
                _overrides.inside.reset(inside)

    return _overrides.made(guarded_arun)


# A tool class of the user's that overrides `run`/`arun` would run its body past `BaseTool.run`: wrapped too
_overrides = Overrides(BaseTool, {"run": _guarded_run, "arun": _guarded_arun}, "hashed_langchain")
