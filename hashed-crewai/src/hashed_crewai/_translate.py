"""Pure translations between CrewAI's tool calls and Hashed's; no policy, no I/O.

The arguments policy sees are the arguments the tool body receives. CrewAI validates a tool's input against the
tool's args schema before it calls the body (`CrewStructuredTool._parse_args` on the ReAct text path,
`BaseTool._validate_kwargs` on the native function-calling path and for `tool.run(**kwargs)`): that coerces types
(`"5"` becomes `5.0` for a float), applies the schema's defaults and drops keys the schema does not know. A
positional `tool.run(value)` skips the schema and binds to the body's own parameters. The body's own defaults then
apply to parameters the schema lacks. The parsing is done with the tool's own code, captured before `_tools.py`
hands a decided parse through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crewai.tools.base_tool import BaseTool, Tool
from crewai.tools.structured_tool import CrewStructuredTool

from hashed.adapters import ToolSignature

__all__ = ["FRAMEWORK", "arguments", "body_of", "identity", "original_of", "parse_input", "parse_kwargs"]

FRAMEWORK = "crewai"
_PARSE_ARGS = CrewStructuredTool._parse_args  # CrewAI's own parsers, before `_tools.install_runs` wraps them
_VALIDATE_KWARGS = BaseTool._validate_kwargs
_signatures: dict[object, tuple[ToolSignature, frozenset[str] | None]] = {}
_MAX_SIGNATURES = 4096  # tools made per request must not grow this forever


def identity(agent: object, task: object, crew: object) -> dict[str, Any]:
    """Who makes the call: the agent's role (matched by the policy's `agents`), the crew (the run), the task.

    A standalone `Agent.kickoff()` has no crew and no task.

    Example:
        >>> from types import SimpleNamespace as Obj
        >>> identity(Obj(role="billing"), Obj(id="t-1"), None)
        {'agent': 'billing', 'run_id': None, 'parent_id': 't-1'}
    """
    return {
        "agent": getattr(agent, "role", None),
        "run_id": getattr(crew, "id", None),
        "parent_id": getattr(task, "id", None),
    }


def parse_input(tool: CrewStructuredTool, raw: str | Mapping[str, Any]) -> dict[str, Any]:
    """What `CrewStructuredTool.invoke(raw)` makes of its input: `raw` (a mapping or JSON text) through the schema.

    Raises:
        ValueError: the input does not fit the schema (the body would not run either).

    Example:
        >>> from crewai.tools import tool
        >>> @tool("run_query")
        ... def run_query(sql: str, database: str = "prod") -> str:
        ...     "Run SQL."
        >>> parse_input(run_query.to_structured_tool(), {"sql": "select 1", "extra": 1})
        {'sql': 'select 1', 'database': 'prod'}
    """
    return _PARSE_ARGS(tool, raw if isinstance(raw, str) else dict(raw))


def parse_kwargs(tool: BaseTool, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What `tool.run(*args, **kwargs)` makes of its input: keywords through the schema, positionals bound as is.

    Example:
        >>> from crewai.tools import tool
        >>> @tool("transfer_money")
        ... def transfer_money(to: str, amount: float) -> str:
        ...     "Send money."
        >>> parse_kwargs(transfer_money, (), {"to": "acct-9", "amount": "5"})
        {'to': 'acct-9', 'amount': 5.0}
        >>> parse_kwargs(transfer_money, ("acct-9", 5), {})
        {'to': 'acct-9', 'amount': 5}
    """
    if not args:
        return _VALIDATE_KWARGS(tool, dict(kwargs))
    return _binder(body_of(tool))[0].bind(args, kwargs)


def arguments(tool: BaseTool | CrewStructuredTool, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments the body receives for `parsed`: the parse, and the defaults of body parameters it lacks.

    Raises:
        TypeError: the parse does not fit the body (the body would fail the same way).

    Example:
        >>> from crewai.tools import tool
        >>> @tool("rename")
        ... def rename(source: str, force: bool = False) -> str:
        ...     "Rename a file."
        >>> arguments(rename, {"source": "/a"})
        {'source': '/a', 'force': False}
    """
    signature, names = _binder(body_of(tool))
    if names is not None and len(parsed) == len(names) and names.issuperset(parsed):
        return dict(parsed)  # the schema gave every parameter by name and nothing else: binding changes nothing
    return signature.bind((), parsed)


def body_of(tool: BaseTool | CrewStructuredTool) -> Callable[..., Any]:
    """The function that receives a tool's arguments: a `Tool`'s function, else the tool's `_run`.

    A `CrewStructuredTool` (the ReAct path's) runs the body of the tool it was made from; a tool made by
    `guard_tool` runs the body of the tool it wraps (`wrapped`). (`getattr` with a default would do, but on a
    pydantic model a missing attribute costs an exception, ≈ 10 µs on every call's path.)
    """
    if isinstance(tool, CrewStructuredTool):
        original = original_of(tool)
        return tool.func if original is None else body_of(original)
    if isinstance(tool, Tool):
        return tool.func
    if hasattr(type(tool), "wrapped"):
        return body_of(tool.wrapped)  # type: ignore[attr-defined]
    return tool._run


def original_of(tool: CrewStructuredTool) -> BaseTool | None:
    """The tool a structured tool was made from, if any (`to_structured_tool` sets it).

    Read from pydantic's store of private attributes: `tool._original_tool` takes pydantic's `__getattr__`, which
    costs as much as validating the tool's input (≈ 3-10 µs), on every call's path.
    """
    private = tool.__pydantic_private__ or {}
    original = private.get("_original_tool")
    return original if isinstance(original, BaseTool) else None


def _binder(body: Callable[..., Any]) -> tuple[ToolSignature, frozenset[str] | None]:
    """The body's parameters (a method's without its receiver), worked out once per function.

    With them, when every parameter is a plain one with no default made per call, their names: a parse that names
    exactly these binds to itself (the common case, where the schema was made from the body; ≈ 5 µs saved per call).
    """
    key = getattr(body, "__func__", body)
    found = _signatures.get(key)
    if found is None:
        if len(_signatures) >= _MAX_SIGNATURES:
            _signatures.clear()
        signature = ToolSignature.of(body)
        names = frozenset(signature.names) if signature.simple and signature.receiver is None else None
        found = _signatures[key] = (signature, names)
    return found
