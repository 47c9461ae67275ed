"""CrewAI's own tool hooks: the before hook decides and blocks a refused call, the after hook shows why.

CrewAI gives hooks no tool call id, so a call's before hook, its run and its after hook are correlated by where they
run: CrewAI runs the three in one thread or task, one call at a time, and concurrent calls (parallel native calls,
`async_execution` tasks, `kickoff_async`) each in a context of its own. The decision waits in a context variable
(`_tools.pending`) for the run, and the after hook takes it back only for the very `tool_input` dict the before hook
saw, which CrewAI hands to both. A refused call never runs: the before hook returns False, and the after hook
replaces CrewAI's fixed "Tool execution blocked by hook" text with the core's refusal (in strict mode it raises
`HookAborted` from `PolicyDenied` instead, which stops the crew). CrewAI swallows any other exception a hook raises
and runs the tool: every failure here becomes `HookAborted`, which blocks it.

The after hook is registered only while a refused call waits for it (#18): CrewAI emits a `HookDispatchedEvent` on
its event bus for every dispatch to a non-empty hook list (≈ 45–55 µs each in a tight loop, ≈ 25 µs with its
telemetry listener off: `_telemetry.py`), and an allowed call needs nothing from the after hook. CrewAI runs the
after hooks of a call, blocked or not, after its before hooks in the same thread or task, so a hook registered by
the before hook is in place when CrewAI dispatches that call's after hooks.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from crewai.hooks import (
    HookAborted,
    get_after_tool_call_hooks,
    get_before_tool_call_hooks,
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
)

from hashed.adapters import Decision, PolicyDenied, ToolCall, begin
from hashed_crewai._telemetry import detach
from hashed_crewai._tools import Pending, Reading, guarding, install_runs, pending
from hashed_crewai._translate import FRAMEWORK, identity, parse_input

if TYPE_CHECKING:
    from crewai.hooks import ToolCallHookContext

__all__ = ["expect_refusal", "install"]


class _Refusals:
    """Refused calls whose after hook has not run yet: the after hook is registered while there is one."""

    lock = threading.Lock()
    waiting = 0


def _refusal(decision: Decision, call: ToolCall) -> str:
    return decision.refusal_message


def before_tool_call(ctx: ToolCallHookContext) -> bool | None:
    """Decide the call (its input as the tool's schema parses it); False blocks it."""
    earlier = pending.get()
    pending.set(None)
    try:
        if earlier is not None:  # the last call in this context is over, whether or not its after hook ran
            _refusal_shown(earlier)
        tool = ctx.tool  # None when CrewAI found no structured tool: then the run is decided where it runs
        hashed = None if tool is None else guarding(tool)
        if hashed is None:
            return None
        who = identity(ctx.agent, ctx.task, ctx.crew)
        raw = ctx.tool_input
        reading = Reading(tool, lambda: parse_input(tool, raw))
        found = Pending(raw, tool, who)
        execution = found.execution = begin(hashed, tool.name, arguments=reading, framework=FRAMEWORK, **who)
        found.parsed = reading.parsed  # None when the input could not be read (then the call is refused)
        pending.set(found)
        if execution.allowed:
            return None
        expect_refusal(found)
    except Exception as exc:  # CrewAI would swallow it and run the tool: block it instead
        raise HookAborted(f"hashed could not decide {ctx.tool_name} ({type(exc).__name__}: {exc})", "hashed") from exc
    return False


def after_tool_call(ctx: ToolCallHookContext) -> str | None:
    """Show the model the refusal of a call Hashed refused; leave every other result as it is."""
    found = pending.get()
    if found is None or found.tool_input is not ctx.tool_input or found.execution is None:
        return None
    pending.set(None)
    _refusal_shown(found)
    if found.execution.allowed:
        return None
    try:
        refusal: str = found.execution.refuse(_refusal)
    except PolicyDenied as exc:  # strict mode: an exception from an after hook is how CrewAI stops a crew
        raise HookAborted(str(exc), "hashed") from exc
    return refusal


def expect_refusal(found: Pending) -> None:
    """`found` was refused: have the after hook in place to show the model why (see above); once per call."""
    if found.announced:
        return
    found.announced = True
    with _Refusals.lock:
        _Refusals.waiting += 1
        if after_tool_call not in get_after_tool_call_hooks():
            register_after_tool_call_hook(after_tool_call)


def _refusal_shown(found: Pending) -> None:
    if not found.announced:
        return
    found.announced = False
    with _Refusals.lock:
        _Refusals.waiting = max(0, _Refusals.waiting - 1)
        if _Refusals.waiting == 0:
            unregister_after_tool_call_hook(after_tool_call)


def install() -> None:
    """Register the before hook in CrewAI's process-wide registry (again if cleared) and wrap the tool runs.

    Also takes CrewAI's hook-dispatch telemetry listener off its event bus while it cannot send anything
    (`_telemetry.py`): CrewAI's largest charge for the hook.
    """
    install_runs()
    detach()
    if before_tool_call not in get_before_tool_call_hooks():
        register_before_tool_call_hook(before_tool_call)
