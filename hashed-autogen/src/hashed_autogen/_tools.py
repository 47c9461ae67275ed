"""`guard_tools`: AutoGen tools that ask Hashed before they run, with the same name, description and schema.

A `HashedTool` decides in `run_json`, on the arguments its tool's own args model validates (defaults and coercions
applied), and runs the tool on that very validated model, so what was decided is what runs. A refused call raises
`PolicyDenied`, which every AutoGen tool runner turns into an error result the model sees (`StaticWorkbench`, the
core `ToolAgent`); a direct `await tool.run_json(...)` learns it by the exception.

Two helpers shared with the workbench and the agent patch live here too: the `scope` an agent's tool call runs in
(its `Hashed`, the agent's name, where a strict-mode refusal waits to leave the run), and the hand-off that lets the
one guard directly under an outer guard run the call that guard decided, without deciding it twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from autogen_core import EVENT_LOGGER_NAME, CancellationToken, trace_tool_span
from autogen_core.logging import ToolCallEvent
from autogen_core.tools import BaseTool, ToolSchema
from pydantic import BaseModel

from hashed.adapters import Execution, PolicyDenied, abegin, current
from hashed_autogen._translate import FRAMEWORK, fields

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["HashedTool", "Scope", "continues", "guard_tools", "handing_over", "hashed_for", "refusal", "scope"]

_events = logging.getLogger(EVENT_LOGGER_NAME)  # AutoGen's own tool-call event log, as BaseTool.run_json writes it


@dataclasses.dataclass(frozen=True)
class Scope:
    """An agent's tool call in progress: the `Hashed` to ask (None: the default), the agent, strict refusals."""

    hashed: Hashed | None = None
    agent: str | None = None
    strict: list[PolicyDenied] | None = None  # refusals the agent patch lets out of the run (strict mode)
    handoffs: tuple[BaseTool[Any, Any], ...] = ()  # the agent's handoff tools: AutoGen hands over whatever they return


scope: ContextVar[Scope | None] = ContextVar("hashed_autogen_scope", default=None)


@dataclasses.dataclass
class _Decided:
    """A call an outer guard decided; the inner guard it reaches first runs it without deciding again (once)."""

    tool: str
    call_id: str | None
    arguments: Mapping[str, Any] | None
    taken: bool = False


_decided: ContextVar[_Decided | None] = ContextVar("hashed_autogen_decided", default=None)


@contextlib.contextmanager
def handing_over(tool: str, call_id: str | None, arguments: Mapping[str, Any] | None) -> Iterator[None]:
    """Around the body of a decided call: the guard it reaches first runs that call without deciding it again."""
    token = _decided.set(_Decided(tool, call_id, arguments))
    try:
        yield
    finally:
        _decided.reset(token)


def continues(tool: str, call_id: str | None, arguments: Mapping[str, Any]) -> bool:
    """Whether this is the very call an outer guard decided (same tool, id and arguments): take it, once."""
    outer = _decided.get()
    if outer is None or outer.taken or outer.tool != tool or outer.call_id != call_id:
        return False
    if outer.arguments is not arguments and (outer.arguments or arguments):  # a workbench may swap {} for None
        return False
    outer.taken = True
    return True


def hashed_for(own: Hashed | None) -> tuple[Hashed, str | None]:
    """The `Hashed` to ask and the agent's name in scope (the agent patch's), when the guard was given none."""
    found = scope.get()
    if found is None:
        return (own if own is not None else current()), None
    hashed = own if own is not None else found.hashed
    return (hashed if hashed is not None else current()), found.agent


def refusal(execution: Execution) -> PolicyDenied:
    """The `PolicyDenied` of a refused execution; in strict mode it is also kept for the agent patch to raise."""
    try:
        return execution.refuse(PolicyDenied)  # type: ignore[no-any-return]
    except PolicyDenied as exc:  # strict mode: the agent's run must end with it, not only this tool call
        found = scope.get()
        if found is not None and found.strict is not None:
            found.strict.append(exc)
        return exc


class HashedTool(BaseTool[BaseModel, Any]):
    """A tool that asks Hashed before it runs; the model sees the same name, description and schema.

    Args:
        tool: the AutoGen tool to guard (a `FunctionTool`, an MCP tool adapter, any `BaseTool`).
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.
        agent: the agent name for the policy's `agents` globs; default: the agent running it (zero-code), else
            the settings' agent name.

    Example:
        AssistantAgent("billing", model_client=client, tools=guard_tools([transfer_money], agent="billing"))
    """

    def __init__(self, tool: BaseTool[Any, Any], hashed: Hashed | None = None, *, agent: str | None = None) -> None:
        super().__init__(tool.args_type(), tool.return_type(), tool.name, tool.description)
        self.tool = tool
        self.hashed = hashed
        self.agent = agent
        # A tool that keeps BaseTool.run_json runs its `run` on the validated model: hand it the decided one.
        self._plain = type(tool).run_json is BaseTool.run_json

    @property
    def schema(self) -> ToolSchema:
        """The guarded tool's own schema, exactly."""
        return self.tool.schema

    def state_type(self) -> type[BaseModel] | None:
        """The guarded tool's state type."""
        return self.tool.state_type()

    def return_value_as_string(self, value: Any) -> str:
        """The guarded tool's own rendering of its result."""
        return self.tool.return_value_as_string(value)

    async def save_state_json(self) -> Mapping[str, Any]:
        """The guarded tool's state."""
        return await self.tool.save_state_json()

    async def load_state_json(self, state: Mapping[str, Any]) -> None:
        """Restore the guarded tool's state."""
        await self.tool.load_state_json(state)

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        """Decide on the arguments as the tool's args model reads them, then run the tool once on them.

        Raises:
            PolicyDenied: the call was refused (AutoGen's tool runners show the model its text as an error).
        """
        if continues(self.name, call_id, args):  # decided by the guard around this one
            return await self._run(args, None, cancellation_token, call_id)
        hashed, agent = hashed_for(self.hashed)
        validated: list[BaseModel] = []

        def arguments() -> dict[str, Any]:  # inside the guard: arguments the model cannot validate are refused
            validated.append(self.tool.args_type().model_validate(args))
            return fields(validated[0])

        execution = await abegin(
            hashed, self.name, arguments=arguments, framework=FRAMEWORK, agent=self.agent or agent, call_id=call_id
        )
        if not execution.allowed:
            raise refusal(execution)
        return await execution.arun(self._run, (args, validated[0], cancellation_token, call_id))

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> Any:
        """Decide on a validated args model, then run the tool's own `run` on it (a direct call)."""
        hashed, agent = hashed_for(self.hashed)
        execution = await abegin(
            hashed, self.name, arguments=lambda: fields(args), framework=FRAMEWORK, agent=self.agent or agent
        )
        if not execution.allowed:
            raise refusal(execution)
        return await execution.arun(self.tool.run, (args, cancellation_token))

    async def _run(
        self,
        args: Mapping[str, Any],
        model: BaseModel | None,
        cancellation_token: CancellationToken,
        call_id: str | None,
    ) -> Any:
        if not self._plain:  # its own run_json: the BaseTool.run_json it may reach is this call (zero-code, `_hooks`)
            with handing_over(self.name, call_id, args):
                return await self.tool.run_json(args, cancellation_token, call_id=call_id)
        with trace_tool_span(tool_name=self.name, tool_description=self.description, tool_call_id=call_id):
            if model is None:
                model = self.tool.args_type().model_validate(args)
            result = await self.tool.run(model, cancellation_token)
        event = ToolCallEvent(tool_name=self.name, arguments=dict(args), result=self.return_value_as_string(result))
        _events.info(event)  # what BaseTool.run_json logs for every tool call
        return result


def guard_tools(
    tools: Sequence[BaseTool[Any, Any]], hashed: Hashed | None = None, *, agent: str | None = None
) -> list[BaseTool[Any, Any]]:
    """Guard each tool (already guarded ones are kept as they are); give the result to `AssistantAgent(tools=...)`.

    Example:
        agent = AssistantAgent("ops", model_client=client, tools=guard_tools([delete_file, read_file], agent="ops"))
    """
    return [t if isinstance(t, HashedTool) else HashedTool(t, hashed, agent=agent) for t in tools]
