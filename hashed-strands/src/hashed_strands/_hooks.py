"""`HashedHookProvider`: every tool call of a Strands agent decided, signed and recorded, and refused the Strands way.

It decides in a `BeforeToolCallEvent` callback that runs after every other one (hook order +infinity, Strands 1.43+;
before that, in registration order), on the arguments the selected tool's body will receive. A refusal is
`event.cancel_tool` with the core's text, which the model sees as the tool's error result while the run goes on;
strict mode raises `PolicyDenied` out of the run instead. A pending call asks the person in the app through a Strands
interrupt (with `approvals="interrupt"`), and their answer becomes the signed approval in the ledger.

The selected tool is then replaced by `Guarded` (`_guarded.py`), which runs it only under a decision made on exactly the
arguments it is handed, and records the outcome, linked to the decision, whose call id is the tool use id.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal

from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry
from strands.hooks import registry as _registry

from hashed.adapters import Effect, Execution, abegin, current
from hashed_strands._guarded import Guarded, Seen, parent
from hashed_strands._translate import (
    APPROVAL,
    FRAMEWORK,
    approval_reason,
    arguments,
    identity,
    read_answer,
)

try:  # BidiAgent's own event before strands-agents 1.55 (same fields, no interrupts); since, BeforeToolCallEvent
    from strands.experimental.hooks.events import BidiBeforeToolCallEvent
except ImportError:
    BidiBeforeToolCallEvent = None

if TYPE_CHECKING:
    from strands.types.tools import AgentTool, ToolUse

    from hashed import Hashed

__all__ = ["HashedHookProvider"]

_LAST: dict[str, Any] = {"order": math.inf} if hasattr(_registry, "HookOrder") else {}
_KEEP = 256  # decided-but-not-yet-run calls and open questions kept per provider (older ones are decided afresh)


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
        self._unrun: OrderedDict[tuple[int, str], Guarded] = OrderedDict()  # allowed, not run yet (see `_before`)
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
            parent_id=parent.get(),
            **identity(agent, self.agent),
        )

    async def _before(self, event: BeforeToolCallEvent) -> None:
        tool = event.selected_tool
        if tool is None or isinstance(tool, Guarded) or tool.tool_type == "structured_output":
            return  # nothing runs; another Hashed provider decided it; Strands' own final-answer tool
        hashed = self._instance()
        if hashed is None:
            return
        tool_use = event.tool_use
        key = (id(event.agent), str(tool_use.get("toolUseId")))
        prior = self._unrun.pop(key, None)
        if prior is not None and prior.reusable(tool, event.agent, tool_use):
            # Allowed before but never ran (another hook's interrupt or cancel came after ours): same decision.
            event.selected_tool = _keep(self._unrun, key, prior)
            return
        if event.cancel_tool:  # refused before us; should a later hook undo that, the tool decides for itself
            event.selected_tool = Guarded(tool, self, event.agent, None)
            return
        seen = Seen(tool_use)  # what this hook decides on: no other code runs before the decision below
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
        event.selected_tool = _keep(self._unrun, key, Guarded(tool, self, event.agent, execution, seen))

    def _forget(self, key: tuple[int, str], guarded: Guarded) -> None:
        """`guarded` runs now: it is no longer a decided call waiting to run."""
        if self._unrun.get(key) is guarded:
            self._unrun.pop(key, None)

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


class _Instrumented(HashedHookProvider):
    """The provider `instrument()` gives every new agent: it guards while the process is instrumented."""

    def _instance(self) -> Hashed | None:
        from hashed_strands._plugin import Installed

        return (Installed.hashed or current()) if Installed.active else None


def attach(agent: Any, hooks: Any) -> None:
    """Guard a new agent (zero-code), unless the app gave it a `HashedHookProvider` of its own."""
    if not any(isinstance(hook, HashedHookProvider) for hook in hooks or ()):
        agent.hooks.add_hook(_Instrumented())
