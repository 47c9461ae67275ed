"""Pure translations between LangChain's tools, inputs and messages and Hashed's calls; no policy, no I/O.

The arguments policy sees are the arguments the tool body receives: the input goes through the tool's own parser
(`BaseTool._to_args_and_kwargs`: the args schema, a lone string to the first field, schema defaults), then the
body's own signature applies its defaults. What LangChain injects (the run manager, the config, injected tool
arguments) is left out: the model did not choose it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools.base import BaseTool, ToolException, _get_runnable_config_param

from hashed.adapters import Decision, Outcome, ToolCall, ToolSignature

__all__ = ["FRAMEWORK", "Parsed", "arguments", "identity", "parse", "read_outcome", "refusal"]

FRAMEWORK = "langchain"
_SUPPLIED = ("run_manager", "callbacks")  # with the config parameter: what BaseTool.run adds after parsing
Parsed = tuple[tuple[Any, ...], dict[str, Any]]
_Shape = tuple[ToolSignature, tuple[str, ...], frozenset[str]]
_shapes: dict[tuple[type[Any], Callable[..., Any], Any], _Shape] = {}
_MAX_SHAPES = 4096


def _body(tool: BaseTool, coroutine: bool) -> tuple[Callable[..., Any], bool]:
    """The function that receives the parsed arguments, and whether it is a method of the tool's class."""
    for name in ("coroutine", "func") if coroutine else ("func", "coroutine"):
        fn = getattr(tool, name, None)
        if callable(fn):
            return fn, False
    return getattr(type(tool), "_arun" if coroutine and _overrides_arun(tool) else "_run"), True


def _overrides_arun(tool: BaseTool) -> bool:
    return type(tool)._arun is not BaseTool._arun


def _shape(tool: BaseTool, fn: Callable[..., Any], method: bool) -> _Shape:
    """The body's signature, the parameters LangChain fills in after parsing, and the arguments it injects.

    Worked out once per tool class, body and schema: LangChain's own filter reads annotations at every call.
    """
    key = (type(tool), fn, tool.args_schema)
    shape = _shapes.get(key)
    if shape is None:
        signature = ToolSignature.of(fn)
        if method:  # the class's own `_run`: its first parameter is the tool itself, never an argument
            params = list(signature.signature.parameters.values())[1:]
            signature = ToolSignature(signature.signature.replace(parameters=params), receiver=False)
        supplied = {_get_runnable_config_param(fn), *_SUPPLIED} & set(signature.names)
        names = set(signature.names) | set(getattr(tool.args_schema, "model_fields", None) or ())
        injected = names - set(tool._filter_injected_args(dict.fromkeys(names)))
        if len(_shapes) >= _MAX_SHAPES:  # tools made per request must not grow this forever
            _shapes.clear()
        shape = _shapes[key] = (signature, tuple(sorted(n for n in supplied if n)), frozenset(injected))
    return shape


def parse(tool: BaseTool, tool_input: str | dict[str, Any], tool_call_id: str | None) -> Parsed:
    """The tool's own parse of `tool_input` into the positional and keyword arguments of its body.

    Raises:
        Exception: whatever the tool's parser raises for input it refuses (the body would not run either).
    """
    return tool._to_args_and_kwargs(tool_input, tool_call_id)


def arguments(tool: BaseTool, parsed: Parsed, *, coroutine: bool) -> dict[str, Any]:
    """The arguments the body receives for `parsed` (from `parse`), by name, defaults applied, injected ones left out.

    Example:
        >>> from langchain_core.tools import tool
        >>> @tool
        ... def run_query(sql: str, database: str = "prod") -> str:
        ...     '''Run SQL.'''
        >>> arguments(run_query, parse(run_query, {"sql": "drop table t"}, None), coroutine=False)
        {'sql': 'drop table t', 'database': 'prod'}
    """
    args, kwargs = parsed
    fn, method = _body(tool, coroutine)
    signature, supplied, injected = _shape(tool, fn, method)
    if supplied:
        kwargs = {**kwargs, **dict.fromkeys(supplied)}  # LangChain passes these after parsing: not arguments
    bound = signature.bind(args, kwargs)
    for name in (*supplied, *injected):
        bound.pop(name, None)
    return bound


def identity(config: Mapping[str, Any] | None, agent: str | None = None) -> dict[str, Any]:
    """Who makes the call: the agent, the run and the parent run, from a tool run's config.

    The agent is `agent` if given, else `create_agent(name=...)` (metadata `lc_agent_name`, langchain 1.1+); the
    run is the checkpointer's `thread_id`.

    Example:
        >>> identity({"metadata": {"lc_agent_name": "ops", "thread_id": 7}})
        {'agent': 'ops', 'run_id': 7, 'parent_id': None}
    """
    config = config or {}
    meta = config.get("metadata") or {}
    parent = getattr(config.get("callbacks"), "parent_run_id", None)
    return {"agent": agent or meta.get("lc_agent_name"), "run_id": meta.get("thread_id"), "parent_id": parent}


def read_outcome(result: Any, duration_ns: int) -> Outcome:
    """The `Outcome` of a tool's result: a `ToolMessage` with status error (a handled tool error) is an error.

    Example:
        >>> read_outcome(ToolMessage("boom", tool_call_id="c1", status="error"), 5).error
        ToolException('boom')
        >>> read_outcome(ToolMessage("sent", tool_call_id="c1"), 5).result
        'sent'
    """
    if isinstance(result, ToolMessage):
        if result.status == "error":
            return Outcome(error=ToolException(str(result.text)), duration_ns=duration_ns)
        return Outcome(result=result.content, duration_ns=duration_ns)
    return Outcome(result=result, duration_ns=duration_ns)


def refusal(tool_call_id: str, name: str) -> Callable[[Decision, ToolCall], ToolMessage]:
    """How a refused tool call answers the model: a `ToolMessage` with the core's refusal text, status error.

    Example:
        >>> from hashed.adapters import Effect
        >>> d = Decision(Effect.DENY, "no", None, "ab", "c", tool="rm")
        >>> refusal("c1", "rm")(d, ToolCall("rm")).content
        'rm denied by policy: no'
    """

    def message(decision: Decision, call: ToolCall) -> ToolMessage:
        return ToolMessage(content=decision.refusal_message, tool_call_id=tool_call_id, name=name, status="error")

    return message
