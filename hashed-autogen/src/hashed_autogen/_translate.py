"""Pure translations between AutoGen's tool calls and results and Hashed's calls and outcomes; no policy, no I/O.

What policy sees is what the tool receives: a `BaseTool` gets its arguments validated by its own args model
(`BaseTool.args_type()`: coercions and defaults applied), so those fields are decided; a workbench tool (MCP)
gets the JSON arguments as sent and fills in the defaults its schema declares, so those are decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autogen_core import FunctionCall
from autogen_core.models import FunctionExecutionResult
from autogen_core.tools import TextResultContent, ToolResult, ToolSchema
from pydantic import BaseModel

from hashed.adapters import Outcome

__all__ = ["FRAMEWORK", "Executed", "error_result", "fields", "read_tool_result", "with_defaults"]

FRAMEWORK = "autogen"
Executed = tuple[FunctionCall, FunctionExecutionResult]  # what AssistantAgent._execute_tool_call returns


def fields(model: BaseModel) -> dict[str, Any]:
    """The arguments a tool's `run` receives from its validated args model, by name.

    Example:
        >>> from pydantic import create_model
        >>> Args = create_model("Args", sql=(str, ...), database=(str, "prod"))
        >>> fields(Args.model_validate({"sql": "drop table t"}))
        {'sql': 'drop table t', 'database': 'prod'}
    """
    return {name: getattr(model, name) for name in type(model).model_fields}


def with_defaults(schema: ToolSchema | None, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JSON arguments of a workbench call with the defaults its schema declares for the ones left out.

    Example:
        >>> schema = {"name": "run_query", "parameters": {"type": "object", "properties": {
        ...     "sql": {"type": "string"}, "database": {"type": "string", "default": "prod"}}}}
        >>> with_defaults(schema, {"sql": "drop table t"})
        {'sql': 'drop table t', 'database': 'prod'}
    """
    bound = dict(arguments or {})
    parameters = schema.get("parameters") if schema is not None else None
    properties: Mapping[str, Any] = parameters.get("properties", {}) if parameters is not None else {}
    for name, spec in properties.items():
        if name not in bound and isinstance(spec, Mapping) and "default" in spec:
            bound[name] = spec["default"]
    return bound


def error_result(name: str, text: str) -> ToolResult:
    """A workbench's error result: the model sees `text` as the tool's failed output.

    Example:
        >>> error_result("rm", "rm denied by policy: no").to_text()
        'rm denied by policy: no'
    """
    return ToolResult(name=name, result=[TextResultContent(content=text)], is_error=True)


def read_tool_result(result: Any, duration_ns: int) -> Outcome:
    """The `Outcome` of a workbench call: an error result is an error (its text, as the workbench reported it).

    Example:
        >>> read_tool_result(error_result("t", "bank is down"), 5).error
        RuntimeError('bank is down')
    """
    if isinstance(result, ToolResult):
        if result.is_error:
            return Outcome(error=RuntimeError(result.to_text()), duration_ns=duration_ns)
        return Outcome(result=result.to_text(), duration_ns=duration_ns)
    return Outcome(result=result, duration_ns=duration_ns)
