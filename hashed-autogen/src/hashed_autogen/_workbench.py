"""`HashedWorkbench`: any AutoGen workbench (an MCP server's included) whose tool calls ask Hashed first.

The call is decided on the JSON arguments the workbench is given, with the defaults the tool's schema declares
filled in (what the tool will apply), and the workbench then gets exactly the arguments it was given: an MCP server
still receives only what the model sent. `AssistantAgent.run()` waits forever if `Workbench.call_tool` raises
(AutoGen 0.7), so nothing leaves `call_tool` as an exception: a refusal, a failure inside the guard and an error of
the wrapped workbench all come back as error results, and a refused or unguardable call never runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autogen_core import CancellationToken
from autogen_core.tools import ToolResult, ToolSchema, Workbench

from hashed.adapters import abegin
from hashed_autogen._tools import handing_over, hashed_for, refusal
from hashed_autogen._translate import FRAMEWORK, error_result, read_tool_result, with_defaults

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["HashedWorkbench"]


class HashedWorkbench(Workbench):
    """Wraps a workbench so that each of its tool calls is checked and recorded; a refusal is an error result.

    Args:
        workbench: the workbench to guard (`McpWorkbench`, `StaticWorkbench`, your own).
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.
        agent: the agent name for the policy's `agents` globs; default: the agent running it (zero-code), else
            the settings' agent name.

    Example:
        async with McpWorkbench(server_params) as mcp:
            agent = AssistantAgent("ops", model_client=client, workbench=HashedWorkbench(mcp, agent="ops"))
    """

    def __init__(self, workbench: Workbench, hashed: Hashed | None = None, *, agent: str | None = None) -> None:
        self.workbench = workbench
        self.hashed = hashed
        self.agent = agent
        self._schemas: dict[str, ToolSchema] = {}  # the last listing: AssistantAgent lists right before each call

    async def list_tools(self) -> list[ToolSchema]:
        """The wrapped workbench's tools, unchanged."""
        listed = await self.workbench.list_tools()
        self._schemas = {schema["name"]: schema for schema in listed}
        return listed

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        """Decide the call, run it once through the wrapped workbench if allowed; never raises (see the module)."""
        try:
            return await self._call_tool(name, arguments, cancellation_token, call_id)
        except Exception as exc:  # noqa: BLE001 - raising here would hang AssistantAgent.run() for ever
            return error_result(name, str(exc) or type(exc).__name__)

    async def _call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        cancellation_token: CancellationToken | None,
        call_id: str | None,
    ) -> ToolResult:
        schema = self._schemas.get(name)
        if schema is None:  # called without a listing first (not by an agent): list once
            await self.list_tools()
            schema = self._schemas.get(name)
        hashed, agent = hashed_for(self.hashed)
        execution = await abegin(
            hashed,
            name,
            arguments=lambda: with_defaults(schema, arguments),
            framework=FRAMEWORK,
            agent=self.agent or agent,
            call_id=call_id,
        )
        if not execution.allowed:
            return error_result(name, refusal(execution).decision.refusal_message)
        with handing_over(name, call_id, arguments):  # a guarded tool inside runs this call, not decides it again
            result: ToolResult = await execution.arun(
                self.workbench.call_tool, (name, arguments, cancellation_token, call_id), outcome=read_tool_result
            )
        return result

    async def start(self) -> None:
        """Start the wrapped workbench."""
        await self.workbench.start()

    async def stop(self) -> None:
        """Stop the wrapped workbench."""
        await self.workbench.stop()

    async def reset(self) -> None:
        """Reset the wrapped workbench."""
        await self.workbench.reset()

    async def save_state(self) -> Mapping[str, Any]:
        """The wrapped workbench's state."""
        return await self.workbench.save_state()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore the wrapped workbench's state."""
        await self.workbench.load_state(state)
