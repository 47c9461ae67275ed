"""`Guarded`: the tool Strands runs once Hashed has decided, which runs only under a decision on what it is handed.

A callback after Hashed's, or an `ExecuteToolStage` middleware (strands-agents 1.62+), may still rewrite a tool
call's arguments, or undo another callback's cancel, after the decision was made. So the selected tool is wrapped:
at execution it checks that the arguments it is handed are the ones decided (deciding again, on what runs, if not),
runs the tool at most once per decision, and records the outcome before the executor reads the result.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from strands.interrupt import InterruptException
from strands.types._events import ToolInterruptEvent, ToolResultEvent  # the executor's own result and interrupt
from strands.types.tools import AgentTool

from hashed.adapters import Execution, current, outcome, started
from hashed_strands._translate import arguments, read_outcome, refusal_result

if TYPE_CHECKING:
    from strands.types.tools import ToolSpec, ToolUse

    from hashed import Hashed

__all__ = ["Decider", "Guarded", "Seen", "parent"]

parent: ContextVar[str | None] = ContextVar("hashed_strands_parent", default=None)  # the tool use a body runs for
_SCALARS = frozenset({str, int, float, bool, type(None)})


class Decider(Protocol):
    """What a `Guarded` tool asks when it must decide by itself (the hook provider)."""

    def _instance(self) -> Hashed | None: ...

    def _forget(self, key: tuple[int, str], guarded: Guarded) -> None: ...

    async def _decide(self, hashed: Hashed, tool: AgentTool, tool_use: ToolUse, agent: Any) -> Execution: ...


class Guarded(AgentTool):
    """The selected tool, run only under a decision on exactly the arguments it is handed; records what it did."""

    def __init__(
        self,
        tool: AgentTool,
        provider: Decider,
        agent: Any,
        execution: Execution | None,
        seen: Seen | None = None,
    ) -> None:
        super().__init__()
        self._guarded = tool
        self._owner = agent  # the agent whose call this is (not `agent`: a tool may have its own)
        self._provider = provider
        self._decided = [] if execution is None else [execution]  # taken once: `list.pop` is atomic
        self._seen = seen

    @property
    def tool_name(self) -> str:
        return self._guarded.tool_name

    @property
    def tool_spec(self) -> ToolSpec:
        return self._guarded.tool_spec

    @property
    def tool_type(self) -> str:
        return self._guarded.tool_type

    @property
    def supports_hot_reload(self) -> bool:
        return self._guarded.supports_hot_reload

    @property
    def is_dynamic(self) -> bool:
        return self._guarded.is_dynamic

    def get_display_properties(self) -> dict[str, str]:
        return self._guarded.get_display_properties()

    def __getattr__(self, name: str) -> Any:
        tool = self.__dict__.get("_guarded")
        if tool is None or name.startswith("__"):  # half-built (copy, pickle) or a protocol lookup: not delegated
            raise AttributeError(name)
        return getattr(tool, name)  # anything else a hook or the framework reads

    def reusable(self, tool: AgentTool | None, agent: Any, tool_use: ToolUse) -> bool:
        """Whether this call, not run yet, is `agent`'s call of `tool` with `tool_use`'s arguments (asked again)."""
        decided = self._decided
        return tool is self._guarded and agent is self._owner and bool(decided) and self._covers(decided[0], tool_use)

    def _covers(self, execution: Execution, tool_use: ToolUse) -> bool:
        if self._seen is not None and self._seen.unchanged(tool_use):
            return True  # the very input decided on, as it was: binding it again gives what was decided
        return _same(self._guarded, execution, tool_use)

    async def stream(self, tool_use: ToolUse, invocation_state: dict[str, Any], **kwargs: Any) -> AsyncGenerator[Any]:
        """Run the tool if a decision allows exactly these arguments (deciding now if none does); record the outcome."""
        try:
            execution: Execution | None = self._decided.pop()
        except IndexError:  # already run once: another run needs a decision of its own
            execution = None
        key = (id(self._owner), str(tool_use.get("toolUseId")))
        self._provider._forget(key, self)
        if execution is None or not self._covers(execution, tool_use):
            hashed = self._provider._instance() or current()
            execution = await self._provider._decide(hashed, self._guarded, tool_use, self._owner)
        if not execution.allowed:
            yield ToolResultEvent(refusal_result(tool_use, execution.decision.refusal_message))
            return
        async for event in _run(self._guarded, execution, tool_use, invocation_state, kwargs):
            yield event


class Seen:
    """The input object a decision was made on, and its plain values then (None: not only plain values).

    Checking that the same object still holds the same values, of the same types, costs a fraction of binding it
    again; anything nested could change unseen, so such input is always bound again.
    """

    __slots__ = ("items", "raw")

    def __init__(self, tool_use: ToolUse) -> None:
        self.raw = tool_use.get("input")
        self.items = _items(self.raw)

    def unchanged(self, tool_use: ToolUse) -> bool:
        raw = tool_use.get("input")
        return raw is self.raw and self.items is not None and _items(raw) == self.items


def _items(raw: Any) -> tuple[tuple[str, type, Any], ...] | None:
    if type(raw) is not dict:
        return None
    items = tuple((key, type(value), value) for key, value in raw.items())
    return items if all(kind in _SCALARS for _, kind, _ in items) else None


def _same(tool: AgentTool, execution: Execution, tool_use: ToolUse) -> bool:
    try:
        return bool(arguments(tool, tool_use) == execution.call.args)
    except Exception:  # noqa: BLE001 - unreadable now: not what was decided
        return False


async def _run(
    tool: AgentTool, execution: Execution, tool_use: ToolUse, state: dict[str, Any], kwargs: dict[str, Any]
) -> AsyncGenerator[Any]:
    """Stream the tool's events, recording its outcome once, before the result event (the executor may stop there)."""
    start = started()
    call_id = str(tool_use.get("toolUseId"))
    last: Any = None
    done = False
    async with aclosing(tool.stream(tool_use, state, **kwargs)) as events:
        while True:
            token = parent.set(call_id)  # a tool call made inside the body names this one as its parent
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                break
            except BaseException as exc:
                execution.finish(outcome=outcome(start, error=exc))
                raise
            finally:
                parent.reset(token)
            if done:
                pass
            elif isinstance(event, ToolResultEvent):  # the SDK's own tools end with it
                execution.finish(outcome=read_outcome(event.tool_result, event.exception, start))
                done = True
            elif isinstance(event, ToolInterruptEvent):  # the tool asks a person; it runs again once answered
                execution.finish(outcome=outcome(start, error=InterruptException(event.interrupts[0])))
                done = True
            last = event
            try:
                yield event
            except BaseException as exc:  # the reader stopped early
                execution.finish(outcome=outcome(start, error=exc))
                raise
    if not done:  # other tools: the last value they yield is the result
        missing = outcome(start, error=Exception(f"{tool.tool_name} returned no result"))
        execution.finish(outcome=missing if last is None else read_outcome(last, None, start))
