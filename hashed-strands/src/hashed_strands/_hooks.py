"""`HashedHookProvider`: every tool call of a Strands agent decided, signed and recorded, and refused the Strands way.

It decides in a `BeforeToolCallEvent` callback that runs after every other one (hook order +infinity, Strands 1.44+;
before that, in registration order), on the arguments the selected tool's body will receive. A refusal is
`event.cancel_tool` with the core's text, which the model sees as the tool's error result while the run goes on;
strict mode raises `PolicyDenied` out of the run instead. A pending call asks the person in the app through a Strands
interrupt (with `approvals="interrupt"`), and their answer becomes the signed approval in the ledger.

The selected tool is then replaced by `_Guarded`, which runs it only under a decision made on exactly the arguments it
is handed: a hook after this one, or an `ExecuteToolStage` middleware, that rewrites them gets a decision of its own
on what runs. `_Guarded` records the outcome, linked to the decision, whose call id is the tool use id.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry
from strands.hooks import registry as _registry
from strands.interrupt import InterruptException
from strands.types._events import ToolInterruptEvent, ToolResultEvent  # the executor's own result and interrupt
from strands.types.tools import AgentTool

from hashed.adapters import Effect, Execution, abegin, current, outcome, started
from hashed_strands._translate import (
    APPROVAL,
    FRAMEWORK,
    approval_reason,
    arguments,
    identity,
    read_answer,
    read_outcome,
    refusal_result,
)

try:  # BidiAgent's own event before strands-agents 1.55 (same fields, no interrupts); since, BeforeToolCallEvent
    from strands.experimental.hooks.events import BidiBeforeToolCallEvent
except ImportError:
    BidiBeforeToolCallEvent = None

if TYPE_CHECKING:
    from strands.types.tools import ToolSpec, ToolUse

    from hashed import Hashed

__all__ = ["HashedHookProvider"]

_LAST: dict[str, Any] = {"order": math.inf} if hasattr(_registry, "HookOrder") else {}
_parent: ContextVar[str | None] = ContextVar("hashed_strands_parent", default=None)  # the tool use a body runs for
_KEEP = 256  # decided-but-not-yet-run calls and open questions kept per provider (older ones are decided afresh)
_SCALARS = frozenset({str, int, float, bool, type(None)})


class HashedHookProvider(HookProvider):
    """Guards every tool call of the agents it is given to; a refused call's error result tells the model why.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.
        agent: the agent name for the policy's `agents` globs; default: `Agent(name=...)`, else the settings.
        approvals: what a call waiting for approval does: `"refuse"` (the model is told it waits; the same call
            runs once approved, e.g. with `hashed approvals approve`), or `"interrupt"` (the agent stops with a
            Strands interrupt named `hashed-approval`; resume it with `respond(interrupt, approve=...)`).

    Example:
        agent = Agent(model=model, tools=tools, hooks=[HashedHookProvider()])
    """

    def __init__(
        self,
        hashed: Hashed | None = None,
        *,
        agent: str | None = None,
        approvals: Literal["refuse", "interrupt"] = "refuse",
    ) -> None:
        if approvals not in ("refuse", "interrupt"):
            raise ValueError(f"approvals must be 'refuse' or 'interrupt', not {approvals!r}")
        self.hashed = hashed
        self.agent = agent
        self.approvals = approvals
        self._unrun: OrderedDict[tuple[int, str], _Guarded] = OrderedDict()  # allowed, not run yet (see `_before`)
        self._asked: OrderedDict[tuple[int, str], str] = OrderedDict()  # interrupted calls: their approval request

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Decide each tool call after every other `BeforeToolCallEvent` callback."""
        registry.add_callback(BeforeToolCallEvent, self._before, **_LAST)
        if BidiBeforeToolCallEvent is not None:
            registry.add_callback(BidiBeforeToolCallEvent, self._before, **_LAST)

    def _instance(self) -> Hashed | None:
        """The `Hashed` that decides now (None: guarding is off)."""
        return self.hashed or current()

    async def _decide(self, hashed: Hashed, tool: AgentTool, tool_use: ToolUse, agent: Any) -> Execution:
        return await abegin(
            hashed,
            tool.tool_name,
            arguments=lambda: arguments(tool, tool_use),
            input=tool_use.get("input"),  # recorded as it came if `arguments` cannot read it
            framework=FRAMEWORK,
            call_id=tool_use.get("toolUseId"),
            parent_id=_parent.get(),
            **identity(agent, self.agent),
        )

    async def _before(self, event: BeforeToolCallEvent) -> None:
        tool = event.selected_tool
        if tool is None or isinstance(tool, _Guarded) or tool.tool_type == "structured_output":
            return  # nothing runs; another Hashed provider decided it; Strands' own final-answer tool
        hashed = self._instance()
        if hashed is None:
            return
        tool_use = event.tool_use
        key = (id(event.agent), str(tool_use.get("toolUseId")))
        prior = self._unrun.pop(key, None)
        if prior is not None and prior._guarded is tool and prior._owner is event.agent and prior.fits(tool_use):
            # Allowed before but never ran (another hook's interrupt or cancel came after ours): same decision.
            event.selected_tool = _keep(self._unrun, key, prior)
            return
        if event.cancel_tool:  # refused before us; should a later hook undo that, the tool decides for itself
            event.selected_tool = _Guarded(tool, self, event.agent, None)
            return
        seen = _Seen(tool_use)  # what this hook decides on: no other code runs before the decision below
        asking = (  # a model's call (not a direct one) of an agent that can pause
            self.approvals == "interrupt"
            and "event_loop_cycle_id" in event.invocation_state
            and hasattr(event, "interrupt")
        )
        if asking and key in self._asked:  # resumed: the person's answer first (asks again if there is none)
            request = hashed.approvals.get(self._asked[key])
            self._answer(hashed, request.id, event.interrupt(APPROVAL, reason=approval_reason(request)))
            del self._asked[key]
        execution = await self._decide(hashed, tool, tool_use, event.agent)
        if asking and execution.decision.effect is Effect.PENDING and execution.decision.approval_id:
            request = hashed.approvals.get(execution.decision.approval_id)
            _keep(self._asked, key, request.id)
            answer = event.interrupt(APPROVAL, reason=approval_reason(request))  # stops the agent until answered
            self._answer(hashed, request.id, answer)  # answered already (resumed from a session elsewhere)
            del self._asked[key]
            execution = await self._decide(hashed, tool, tool_use, event.agent)
        if not execution.allowed:
            event.cancel_tool = str(execution.refuse())  # the core's words, as plain text; PolicyDenied in strict mode
            return
        event.selected_tool = _keep(self._unrun, key, _Guarded(tool, self, event.agent, execution, seen))

    def _answer(self, hashed: Hashed, request_id: str, response: Any) -> None:
        """Record a person's answer to an approval request (unless it was answered elsewhere first)."""
        approve, by, comment = read_answer(response)
        if hashed.approvals.get(request_id).status == "pending":
            (hashed.approve if approve else hashed.deny)(request_id, by=by, comment=comment)


def _keep(cache: OrderedDict[Any, Any], key: Any, value: Any) -> Any:
    cache[key] = value
    while len(cache) > _KEEP:
        cache.popitem(last=False)
    return value


class _Guarded(AgentTool):
    """The selected tool, run only under a decision on exactly the arguments it is handed; records what it did."""

    def __init__(
        self,
        tool: AgentTool,
        provider: HashedHookProvider,
        agent: Any,
        execution: Execution | None,
        seen: _Seen | None = None,
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

    def fits(self, tool_use: ToolUse) -> bool:
        """Whether the decision made for this tool covers `tool_use`'s arguments."""
        return bool(self._decided) and self._covers(self._decided[0], tool_use)

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
        if self._provider._unrun.get(key) is self:
            self._provider._unrun.pop(key, None)
        if execution is None or not self._covers(execution, tool_use):
            hashed = self._provider._instance() or current()
            execution = await self._provider._decide(hashed, self._guarded, tool_use, self._owner)
        if not execution.allowed:
            yield ToolResultEvent(refusal_result(tool_use, execution.decision.refusal_message))
            return
        async for event in _run(self._guarded, execution, tool_use, invocation_state, kwargs):
            yield event


class _Seen:
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
            token = _parent.set(call_id)  # a tool call made inside the body names this one as its parent
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                break
            except BaseException as exc:
                execution.finish(outcome=outcome(start, error=exc))
                raise
            finally:
                _parent.reset(token)
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


class _Instrumented(HashedHookProvider):
    """The provider `instrument()` gives every new agent: it guards while the process is instrumented."""

    def _instance(self) -> Hashed | None:
        from hashed_strands._plugin import Installed

        return (Installed.hashed or current()) if Installed.active else None


def attach(agent: Any, hooks: Any) -> None:
    """Guard a new agent (zero-code), unless the app gave it a `HashedHookProvider` of its own."""
    if not any(isinstance(hook, HashedHookProvider) for hook in hooks or ()):
        agent.hooks.add_hook(_Instrumented())
