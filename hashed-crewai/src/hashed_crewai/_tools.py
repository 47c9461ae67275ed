"""Where CrewAI runs a tool's body: every guarded run is decided there, and runs at most once per decision.

CrewAI reaches a tool body through `CrewStructuredTool.invoke`/`ainvoke` (the ReAct text path), `BaseTool.run`/`arun`
(native function calling, and a tool used directly or from another tool's body) or `Tool.run`/`arun` (the same for
`@tool` functions). Each is wrapped once per process, and a wrapper does nothing unless its tool is guarded (every
tool after `instrument()`, or a tool made by `guard_tool`).

The before hook (`_hooks.py`) decides a call first, on the parse of its input, and leaves that decision here as
`Pending`. The wrapper runs the body under it only if it is about this tool and these very arguments, once; else it
decides the run itself: arguments another hook rewrote after Hashed's, the retries CrewAI makes after a tool error,
runs no hook saw. The body gets the parse that was decided: the tool's parser is handed it instead of parsing again.

A tool class of the user's that overrides `run` or `arun` itself (to log, to retry) would run its body past the
wrapper of `BaseTool.run` wherever no hook decides first: a tool calling it, a direct call. Its override is wrapped
too, when the class is made (or when `instrument()` finds it), and is decided like any run; the `super().run()` it
may go on to is the same run, not decided twice (`hashed.adapters.Overrides`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from crewai.tools.base_tool import BaseTool, Tool
from crewai.tools.structured_tool import CrewStructuredTool
from pydantic import PrivateAttr

from hashed.adapters import Execution, Overrides, abegin, begin, current
from hashed_crewai._plugin import _Installed
from hashed_crewai._translate import FRAMEWORK, arguments, original_of, parse_input, parse_kwargs

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["HashedTool", "Pending", "Reading", "guard_tool", "guarding", "install_runs", "pending"]


class Pending:
    """A call the before hook decided, until CrewAI runs it (once) and the after hook reports it."""

    __slots__ = ("announced", "execution", "fresh", "original", "parsed", "seen", "tool", "tool_input", "who")

    def __init__(self, tool_input: dict[str, Any], tool: CrewStructuredTool, who: dict[str, Any]) -> None:
        self.tool_input = tool_input  # the very dict CrewAI hands the before and the after hook: the correlation
        self.seen = dict(tool_input)  # as decided: a hook after Hashed's may change it in place
        self.tool = tool
        self.original = original_of(tool)
        self.who = who
        self.parsed: dict[str, Any] | None = None  # the tool's parse of the input, handed to the body
        self.execution: Execution | None = None
        self.fresh = True
        self.announced = False  # whether the after hook was put in place to show this call's refusal

    def about(self, tool: object) -> bool:
        """Whether `tool` is the tool this call was decided for (the structured tool or the tool it was made from)."""
        return tool is self.tool or (tool is self.original and tool is not None)


# One tool call at a time per thread or task: CrewAI runs the before hook, the body and the after hook of a call in
# one context, and concurrent calls (parallel native calls, async tasks) each in a context of their own.
pending: ContextVar[Pending | None] = ContextVar("hashed_crewai_pending", default=None)
_handoff: ContextVar[tuple[object, dict[str, Any]] | None] = ContextVar("hashed_crewai_handoff", default=None)


class HashedTool(BaseTool):
    """A tool guarded wherever it runs, made by `guard_tool`: same name, description and args schema."""

    _wrapped: BaseTool = PrivateAttr()
    _hashed: Hashed | None = PrivateAttr(default=None)

    @property
    def wrapped(self) -> BaseTool:
        """The tool whose body runs when a call is allowed."""
        return self._private["_wrapped"]  # type: ignore[no-any-return]

    @property
    def hashed(self) -> Hashed | None:
        """The `Hashed` given to `guard_tool`, if one was."""
        return self._private["_hashed"]  # type: ignore[no-any-return]

    @property
    def _private(self) -> dict[str, Any]:
        return self.__pydantic_private__ or {}  # not `self._x`: pydantic's `__getattr__` costs µs on every call

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped._run(*args, **kwargs)

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        return await self.wrapped._arun(*args, **kwargs)


def guard_tool(tool: BaseTool, hashed: Hashed | None = None) -> HashedTool:
    """Guard one tool, wherever it runs, without `instrument()`: give the agent the returned tool instead.

    Args:
        tool: a CrewAI tool (`@tool` function or `BaseTool`); it is left as it is.
        hashed: the `Hashed` to ask; default: the one `instrument()` was given, else `hashed.adapters.current()`.

    Example:
        agent = Agent(role="billing", goal="...", backstory="...", tools=[guard_tool(transfer_money), search])
    """
    from hashed_crewai._hooks import install  # the hooks that decide its calls with the agent's identity

    install()
    fields = {name: getattr(tool, name) for name in BaseTool.model_fields if name != "current_usage_count"}
    guarded = HashedTool(**fields)
    guarded._wrapped, guarded._hashed = tool, hashed
    return guarded


def guarding(tool: object) -> Hashed | None:
    """The `Hashed` that guards `tool`'s runs, or None when it is not guarded."""
    base = original_of(tool) if isinstance(tool, CrewStructuredTool) else tool
    if isinstance(base, HashedTool):
        return base.hashed or _Installed.hashed or current()
    if _Installed.active:
        return _Installed.hashed or current()
    return None


class Reading:
    """How one run's arguments are read: the tool's own parse (what the body is handed), bound to the body.

    Called by the core inside the guard (`arguments=`), so a parse that fails denies the call, recorded.
    """

    __slots__ = ("parse", "parsed", "tool")

    def __init__(self, tool: BaseTool | CrewStructuredTool, parse: Callable[[], dict[str, Any]]) -> None:
        self.tool = tool
        self.parse = parse
        self.parsed: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        self.parsed = self.parse()
        return arguments(self.tool, self.parsed)


def _claim(tool: object, raw: object) -> tuple[Pending | None, Execution | None, dict[str, Any] | None]:
    """The pending call in this context, with its decision and parse if this run is that call, unchanged, once.

    Unchanged: each key of the input the tool runs with has the value the before hook saw (the ReAct path drops
    keys the schema lacks). The body then gets the decided parse, which pydantic built afresh, so no later change to
    the input reaches it; a value changed after the decision is a rewrite, decided again where it runs.
    """
    found = pending.get()
    execution = None if found is None else found.execution
    if found is None or execution is None or not (found.fresh and execution.allowed and found.about(tool)):
        return found, None, None
    seen = found.seen
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict skips the ABC's check (a Python call)
        return found, None, None
    if raw != seen and any(k not in seen or not (seen[k] is v or seen[k] == v) for k, v in raw.items()):
        return found, None, None
    found.fresh = False
    return found, execution, found.parsed


def _decided(tool: object, found: Pending | None, execution: Execution) -> Execution:
    if found is not None and found.about(tool):
        found.execution, found.fresh = execution, False  # the after hook reports this decision
        if not execution.allowed:
            from hashed_crewai._hooks import expect_refusal  # (a cycle: the hooks module imports this one)

            expect_refusal(found)  # in strict mode the after hook stops the crew
    return execution


def _guarded(
    tool: Any, hashed: Hashed, raw: object, read: Callable[[], dict[str, Any]], body: Callable[[], Any], handoff: bool
) -> Any:
    found, execution, parsed = _claim(tool, raw)
    if execution is None:
        who = found.who if found is not None else {}
        reading = Reading(tool, read)
        execution = _decided(tool, found, begin(hashed, tool.name, arguments=reading, framework=FRAMEWORK, **who))
        parsed = reading.parsed
    token = _handoff.set((tool, parsed)) if handoff and parsed is not None else None
    try:
        return execution.run(body)
    finally:
        if token is not None:
            _handoff.reset(token)


async def _aguarded(
    tool: Any,
    hashed: Hashed,
    raw: object,
    read: Callable[[], dict[str, Any]],
    body: Callable[[], Awaitable[Any]],
    handoff: bool,
) -> Any:
    found, execution, parsed = _claim(tool, raw)
    if execution is None:
        who = found.who if found is not None else {}
        reading = Reading(tool, read)
        execution = _decided(
            tool, found, await abegin(hashed, tool.name, arguments=reading, framework=FRAMEWORK, **who)
        )
        parsed = reading.parsed
    token = _handoff.set((tool, parsed)) if handoff and parsed is not None else None
    try:
        return await execution.arun(body)
    finally:
        if token is not None:
            _handoff.reset(token)


def _handed(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A tool's parser that returns the decided parse to the run it was decided for (once), else parses."""

    @functools.wraps(original)
    def parse(self: Any, raw: Any) -> dict[str, Any]:
        handed = _handoff.get()
        if handed is not None and handed[0] is self:
            _handoff.set(None)
            return handed[1]
        return original(self, raw)

    return parse


def _run(original: Callable[..., Any], owner: type = BaseTool) -> Callable[..., Any]:
    marks = owner not in (BaseTool, Tool)  # a user's override: what it reaches through super() is the same run

    @functools.wraps(original)
    def run(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        hashed = guarding(self)
        if hashed is None or (_overrides.inside.get() is not None and _overrides.within(self, owner, "run")):
            return original(self, *args, **kwargs)
        read = lambda: parse_kwargs(self, args, kwargs)  # noqa: E731 - read only when this run is decided here
        raw = None if args else kwargs
        inside = _overrides.enter(self, owner, "run") if marks else None
        try:
            return _guarded(self, hashed, raw, read, lambda: original(self, *args, **kwargs), handoff=not args)
        finally:
            if inside is not None:
                _overrides.inside.reset(inside)

    return _overrides.made(run)


def _arun(
    original: Callable[..., Coroutine[Any, Any, Any]], owner: type = BaseTool
) -> Callable[..., Coroutine[Any, Any, Any]]:
    marks = owner not in (BaseTool, Tool)

    @functools.wraps(original)
    async def arun(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        hashed = guarding(self)
        if hashed is None or (_overrides.inside.get() is not None and _overrides.within(self, owner, "arun")):
            return await original(self, *args, **kwargs)
        read = lambda: parse_kwargs(self, args, kwargs)  # noqa: E731 - read only when this run is decided here
        body = lambda: original(self, *args, **kwargs)  # noqa: E731 - the continuation, awaited once
        inside = _overrides.enter(self, owner, "arun") if marks else None
        try:
            return await _aguarded(self, hashed, None if args else kwargs, read, body, handoff=not args)
        finally:
            if inside is not None:
                _overrides.inside.reset(inside)

    return _overrides.made(arun)


# A tool class of the user's that overrides `run`/`arun` (see above): wrapped as `BaseTool`'s are, by `install_runs`
_overrides = Overrides(BaseTool, {"run": _run, "arun": _arun}, "hashed_crewai")


def _invoke(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def invoke(self: CrewStructuredTool, input: Any, config: Any = None, **kwargs: Any) -> Any:
        hashed = guarding(self)
        if hashed is None:
            return original(self, input, config, **kwargs)
        read = lambda: {**parse_input(self, input), **kwargs}  # noqa: E731 - extra keywords reach the body too
        raw = None if kwargs else input
        return _guarded(self, hashed, raw, read, lambda: original(self, input, config, **kwargs), handoff=not kwargs)

    return invoke


def _ainvoke(original: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(original)
    async def ainvoke(self: CrewStructuredTool, input: Any, config: Any = None, **kwargs: Any) -> Any:
        hashed = guarding(self)
        if hashed is None:
            return await original(self, input, config, **kwargs)
        read = lambda: {**parse_input(self, input), **kwargs}  # noqa: E731 - extra keywords reach the body too
        body = lambda: original(self, input, config, **kwargs)  # noqa: E731 - the continuation, awaited once
        return await _aguarded(self, hashed, None if kwargs else input, read, body, handoff=not kwargs)

    return ainvoke


class _State:
    installed = False


def install_runs() -> None:
    """Wrap every way CrewAI runs a tool body, and its two parsers (once per process; inert for unguarded tools)."""
    if _State.installed:
        return
    _State.installed = True
    for cls in (BaseTool, Tool):
        cls.run = _run(cls.__dict__["run"])  # type: ignore[method-assign]
        cls.arun = _arun(cls.__dict__["arun"])  # type: ignore[method-assign]
    _overrides.install()  # a tool class that overrides run/arun (see above), made before now or from now on
    CrewStructuredTool.invoke = _invoke(CrewStructuredTool.invoke)  # type: ignore[method-assign]
    CrewStructuredTool.ainvoke = _ainvoke(CrewStructuredTool.ainvoke)  # type: ignore[method-assign]
    CrewStructuredTool._parse_args = _handed(CrewStructuredTool._parse_args)  # type: ignore[method-assign]
    BaseTool._validate_kwargs = _handed(BaseTool._validate_kwargs)  # type: ignore[method-assign]
