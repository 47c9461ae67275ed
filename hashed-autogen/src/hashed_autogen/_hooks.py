"""Zero-code guarding: `AssistantAgent._execute_tool_call`, where every tool call of every agent and team runs.

AgentChat 0.7 has no tool hook, so this patches a private static method, the one place that sees each call with
the agent's name. Each workbench (the `StaticWorkbench` of `tools=`, MCP workbenches) is wrapped in a
`HashedWorkbench` for the call, which decides it under the agent's name; `BaseTool.run_json` decides every other
run (a tool that calls another, the core `ToolAgent`, your own code: `_guard_runs`). Handoffs are not decided:
AutoGen hands over whenever the model asks, whatever the handoff tool returns, so a refusal could not stop one.
Nothing may raise out of this method (the agent's `run()` would wait forever for its tool calls), except in strict
mode, where the refusal leaves the run only after the waiting loop has been told to stop waiting.

Private API moves: before patching, the installed autogen-agentchat must be a 0.7 release and the method must have
the exact shape below; otherwise `FrameworkVersionError` says so, and nothing is left silently unguarded.
"""

from __future__ import annotations

import inspect
import logging
import re
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from importlib import metadata
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import FunctionExecutionResult
from autogen_core.tools import BaseTool, Workbench

from hashed.adapters import FrameworkVersionError, PolicyDenied
from hashed_autogen._plugin import Installed
from hashed_autogen._tools import HashedTool, Scope, continues, scope
from hashed_autogen._translate import Executed
from hashed_autogen._workbench import HashedWorkbench

__all__ = ["SHAPE", "check", "install"]

_log = logging.getLogger("hashed.autogen")
SHAPE = ("tool_call", "workbench", "handoff_tools", "agent_name", "cancellation_token", "stream")
_SUPPORTED = (0, 7)
_HINT = "pip install 'autogen-agentchat>=0.7,<0.8', or guard tools with hashed_autogen.guard_tools([...])"


def check(cls: type[Any], version: str) -> Callable[..., Any]:
    """The unpatched `_execute_tool_call` of `cls`, if this release is one the patch knows.

    Raises:
        FrameworkVersionError: another release, or the private method moved or changed its parameters.
    """
    found = cls.__dict__.get("_execute_tool_call")
    if not isinstance(found, staticmethod) or not inspect.iscoroutinefunction(found.__func__):
        raise FrameworkVersionError("autogen-agentchat", needs="AssistantAgent._execute_tool_call", hint=_HINT)
    original: Callable[..., Any] = getattr(found.__func__, "__hashed_original__", found.__func__)
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if numbers != _SUPPORTED or tuple(inspect.signature(original).parameters) != SHAPE:
        raise FrameworkVersionError(
            f"autogen-agentchat {version}", needs=f"AssistantAgent._execute_tool_call({', '.join(SHAPE)})", hint=_HINT
        )
    return original


def install(cls: type[Any] = AssistantAgent) -> None:
    """Patch `cls._execute_tool_call` (once; inert while not instrumented).

    Raises:
        FrameworkVersionError: see `check` (also warned, so a launcher that skips the adapter still says why).
    """
    try:
        original = check(cls, _version())
    except FrameworkVersionError as exc:
        message = f"hashed: AutoGen agents are NOT guarded: {exc}"
        _log.warning("%s", message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        raise
    if getattr(cls.__dict__["_execute_tool_call"].__func__, "__hashed_original__", None) is not None:
        return

    async def _execute_tool_call(
        tool_call: FunctionCall,
        workbench: Sequence[Workbench],
        handoff_tools: list[BaseTool[Any, Any]],
        agent_name: str,
        cancellation_token: CancellationToken,
        stream: Any,
    ) -> Executed:
        if not Installed.active:
            return await original(tool_call, workbench, handoff_tools, agent_name, cancellation_token, stream)  # type: ignore[no-any-return]
        strict: list[PolicyDenied] = []
        token = scope.set(Scope(Installed.hashed, agent_name, strict, tuple(handoff_tools)))
        try:
            guarded = [wb if isinstance(wb, HashedWorkbench) else HashedWorkbench(wb) for wb in workbench]
            result: Executed = await original(tool_call, guarded, handoff_tools, agent_name, cancellation_token, stream)
        except Exception as exc:  # noqa: BLE001 - raising here would hang the agent's run() for ever
            result = tool_call, _error(tool_call, str(exc) or type(exc).__name__)
        finally:
            scope.reset(token)
        if strict:  # strict mode: wake the loop waiting for the tool calls (it stops at None), then leave the run
            stream.put_nowait(None)
            raise strict[0]
        return result

    _execute_tool_call.__hashed_original__ = original  # type: ignore[attr-defined]
    cls._execute_tool_call = staticmethod(_execute_tool_call)
    _guard_runs()


def _guard_runs() -> None:
    """Decide every `BaseTool.run_json` no agent's call decided: a tool that calls another, the core `ToolAgent`.

    An agent's own call is decided by its `HashedWorkbench`, which hands the call over (`handing_over`) to the
    `run_json` the workbench reaches: that run is the call, not decided again. Any other run is decided where it
    runs, as `guard_tools` would (under the calling agent's name while one is running), except the agent's handoff
    tools, which are not decided (see above). Once per process; inert while not instrumented.
    """
    original = BaseTool.run_json
    if getattr(original, "__hashed_original__", None) is not None:
        return

    def run_json(
        self: BaseTool[Any, Any],
        args: Mapping[str, Any],
        cancellation_token: CancellationToken,
        call_id: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        # Not a coroutine function itself: it hands back the coroutine that runs the call (one frame less per call)
        if not Installed.active or continues(self.name, call_id, args) or isinstance(self, HashedTool):
            return original(self, args, cancellation_token, call_id=call_id)
        found = scope.get()
        if found is not None and any(self is handoff for handoff in found.handoffs):  # not decided (module doc)
            return original(self, args, cancellation_token, call_id=call_id)
        return HashedTool(self, Installed.hashed).run_json(args, cancellation_token, call_id)

    run_json.__hashed_original__ = original  # type: ignore[attr-defined]
    BaseTool.run_json = run_json  # type: ignore[method-assign]


def _version() -> str:
    try:
        return metadata.version("autogen-agentchat")
    except metadata.PackageNotFoundError:  # imported from a source tree: no release to check against
        return "(unknown version)"


def _error(tool_call: FunctionCall, text: str) -> FunctionExecutionResult:
    return FunctionExecutionResult(content=text, name=tool_call.name, call_id=tool_call.id, is_error=True)
