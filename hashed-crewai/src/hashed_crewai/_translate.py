"""Pure translations between CrewAI's tool calls and Hashed's; no policy, no I/O.

The arguments policy sees are the arguments the tool body receives. CrewAI validates a tool's input against the
tool's args schema before it calls the body (`CrewStructuredTool._parse_args` on the ReAct text path,
`BaseTool._validate_kwargs` on the native function-calling path and for `tool.run(**kwargs)`): that coerces types
(`"5"` becomes `5.0` for a float), applies the schema's defaults and drops keys the schema does not know. A
positional `tool.run(value)` skips the schema and binds to the body's own parameters. Both are done here with the
tool's own code, captured before `_tools.py` hands a decided parse through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crewai.tools.base_tool import BaseTool, Tool
from crewai.tools.structured_tool import CrewStructuredTool

from hashed.adapters import ToolSignature

__all__ = ["FRAMEWORK", "body_of", "identity", "parse_input", "parse_kwargs"]

FRAMEWORK = "crewai"
_PARSE_ARGS = CrewStructuredTool._parse_args  # CrewAI's own parsers, before `_tools.install` wraps them
_VALIDATE_KWARGS = BaseTool._validate_kwargs


def identity(agent: object, task: object, crew: object) -> dict[str, Any]:
    """Who makes the call: the agent's role (matched by the policy's `agents`), the crew (the run), the task.

    A standalone `Agent.kickoff()` has no crew and no task.

    Example:
        >>> from types import SimpleNamespace as Obj
        >>> identity(Obj(role="billing"), Obj(id="t-1"), None)
        {'agent': 'billing', 'run_id': None, 'parent_id': 't-1'}
    """
    return {"agent": getattr(agent, "role", None), "run_id": getattr(crew, "id", None), "parent_id": getattr(task, "id", None)}


def parse_input(tool: CrewStructuredTool, raw: str | Mapping[str, Any]) -> dict[str, Any]:
    """What `CrewStructuredTool.invoke(raw)` hands its body: `raw` (a mapping or JSON text) through the args schema.

    Raises:
        ValueError: the input does not fit the schema (the body would not run either).

    Example:
        >>> from crewai.tools import tool
        >>> @tool("run_query")
        ... def run_query(sql: str, database: str = "prod") -> str:
        ...     '''Run SQL.'''
        >>> parse_input(run_query.to_structured_tool(), {"sql": "select 1", "extra": 1})
        {'sql': 'select 1', 'database': 'prod'}
    """
    return _PARSE_ARGS(tool, raw if isinstance(raw, str) else dict(raw))


def parse_kwargs(tool: BaseTool, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What `tool.run(*args, **kwargs)` hands its body: keywords through the args schema, positionals bound as is.

    Example:
        >>> from crewai.tools import tool
        >>> @tool("transfer_money")
        ... def transfer_money(to: str, amount: float) -> str:
        ...     '''Send money.'''
        >>> parse_kwargs(transfer_money, (), {"to": "acct-9", "amount": "5"})
        {'to': 'acct-9', 'amount': 5.0}
        >>> parse_kwargs(transfer_money, ("acct-9", 5), {})
        {'to': 'acct-9', 'amount': 5}
    """
    if not args:
        return _VALIDATE_KWARGS(tool, dict(kwargs))
    return ToolSignature.of(body_of(tool)).bind(args, kwargs)


def body_of(tool: BaseTool) -> Callable[..., Any]:
    """The function that receives a tool's arguments: a `Tool`'s function, else the tool's `_run`.

    A tool from `guard_tool` names the tool it wraps (`wrapped`), whose body it runs.
    """
    inner = getattr(tool, "wrapped", None)
    if isinstance(inner, BaseTool):
        return body_of(inner)
    func = tool.func if isinstance(tool, Tool) else None
    return func if callable(func) else tool._run
