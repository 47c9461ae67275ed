"""Pure translations between Strands' tool uses, tools and results and Hashed's calls; no policy, no I/O.

The arguments policy sees are the arguments the tool body receives. A `@tool` function gets its input validated by
its own pydantic model (types coerced, defaults applied, unknown keys dropped, the injected `agent` and tool
context left out), so that is how it is bound here too; any other tool (a module tool, an MCP tool, an agent as a
tool) gets the input object itself, with the defaults its spec declares.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strands.tools.decorator import DecoratedFunctionTool

from hashed.adapters import Outcome, outcome

if TYPE_CHECKING:
    from strands.types.tools import AgentTool, ToolResult, ToolUse

__all__ = [
    "APPROVAL",
    "FRAMEWORK",
    "approval_reason",
    "arguments",
    "identity",
    "read_answer",
    "read_outcome",
    "refusal_result",
    "respond",
]

FRAMEWORK = "strands"
APPROVAL = "hashed-approval"  # the name a pending call's interrupt carries (`Interrupt.name`)
_UNNAMED = "Strands Agents"  # Agent's own default name (strands.agent.agent._DEFAULT_AGENT_NAME): none was chosen
_YES = frozenset({"y", "yes", "approve", "approved"})


def arguments(tool: AgentTool, tool_use: ToolUse) -> dict[str, Any]:
    """The arguments `tool`'s body receives for `tool_use`, by name, defaults applied.

    Raises:
        ValueError: a `@tool` function's own validation refuses the input (its body would not run either).
        TypeError: the input is not an object of named arguments.

    Example:
        >>> from strands import tool
        >>> @tool
        ... def run_query(sql: str, database: str = "prod") -> str:
        ...     '''Run SQL.'''
        >>> arguments(run_query, {"toolUseId": "t1", "name": "run_query", "input": {"sql": "drop table t"}})
        {'sql': 'drop table t', 'database': 'prod'}
    """
    raw = tool_use.get("input", {})
    if isinstance(tool, DecoratedFunctionTool):  # what its `stream` does before calling the function
        bound: dict[str, Any] = tool._metadata.validate_input(raw)
        return bound
    if not isinstance(raw, Mapping):
        raise TypeError(f"{tool.tool_name} takes an object of named arguments, not {type(raw).__name__}")
    return {**_spec_defaults(tool), **copy.deepcopy(dict(raw))}  # a copy: what is decided cannot change under it


def _spec_defaults(tool: AgentTool) -> dict[str, Any]:
    """The `default` of each property in the tool's JSON schema (what a schema-driven server fills in)."""
    try:
        properties = tool.tool_spec["inputSchema"]["json"]["properties"]
        return {name: copy.deepcopy(p["default"]) for name, p in properties.items() if "default" in p}
    except (KeyError, TypeError, AttributeError):  # no schema, or not the usual shape: no defaults to apply
        return {}


def identity(agent: Any, name: str | None = None) -> dict[str, Any]:
    """Who makes the call: `name` if given, else the agent's own name (unless it is Strands' default), and its session.

    Example:
        >>> class Bot: name, session_id = "ops-bot", "s-1"
        >>> identity(Bot())
        {'agent': 'ops-bot', 'run_id': 's-1'}
    """
    named = name or getattr(agent, "name", None)
    return {"agent": None if named == _UNNAMED else named, "run_id": getattr(agent, "session_id", None)}


def refusal_result(tool_use: ToolUse, text: str) -> ToolResult:
    """The tool result a refused call gives the model: the core's refusal, status error.

    Example:
        >>> refusal_result({"toolUseId": "t1", "name": "rm", "input": {}}, "rm denied by policy: no")["content"]
        [{'text': 'rm denied by policy: no'}]
    """
    return {"toolUseId": str(tool_use.get("toolUseId")), "status": "error", "content": [{"text": text}]}


def read_outcome(result: ToolResult, exception: BaseException | None, start: int) -> Outcome:
    """The `Outcome` of a tool result for a run that began at `start` (`hashed.adapters.started()`).

    Status error is an error: the exception the tool raised, where Strands hands it over, else the error text. The
    result digested is the text the model is shown when that is all the content, else the content blocks.

    Example:
        >>> read_outcome({"toolUseId": "t1", "status": "error", "content": [{"text": "Error: boom"}]}, None, 0).error
        Exception('Error: boom')
        >>> read_outcome({"toolUseId": "t1", "status": "success", "content": [{"text": "sent"}]}, None, 0).result
        'sent'
        >>> read_outcome({"toolUseId": "t1", "status": "success", "content": [{"json": {"n": 1}}]}, None, 0).result
        [{'json': {'n': 1}}]
    """
    content = result.get("content") if isinstance(result, Mapping) else result
    if isinstance(result, Mapping) and result.get("status") == "error":
        if exception is None:
            texts = [block.get("text", "") for block in content or () if isinstance(block, Mapping)]
            exception = Exception(" ".join(t for t in texts if t) or "the tool reported an error")
        return outcome(start, error=exception)
    if (
        isinstance(content, list)
        and len(content) == 1
        and isinstance(content[0], Mapping)
        and content[0].keys() == {"text"}
    ):
        return outcome(start, result=content[0]["text"])
    return outcome(start, result=content)


def approval_reason(request: Any) -> dict[str, Any]:
    """What a pending call's interrupt tells the person asked: the request, as the ledger keeps it (redacted).

    `request` is the core's approval request (`hashed.approvals.get(id)`). Plain JSON, so a session manager can
    keep it while the agent waits.
    """
    return {
        "approval": request.id,
        "tool": request.tool,
        "args": request.args,
        "rule": request.rule,
        "reason": request.reason,
        "agent": request.agent,
    }


def respond(interrupt: Any, *, approve: bool, by: str | None = None, comment: str | None = None) -> dict[str, Any]:
    """The answer to a pending call's interrupt, to resume the agent with: `agent([respond(i, approve=True, ...)])`.

    Example:
        >>> class Asked: id = "v1:before_tool_call:t1:x"
        >>> answer = respond(Asked(), approve=True, by="alice")
        >>> answer == {"interruptResponse": {"interruptId": Asked.id, "response": {"approve": True, "by": "alice",
        ...     "comment": None}}}
        True
    """
    answer = {"approve": approve, "by": by, "comment": comment}
    return {"interruptResponse": {"interruptId": interrupt.id, "response": answer}}


def read_answer(response: Any) -> tuple[bool, str | None, str | None]:
    """Whether a person approved, who, and why: `respond`'s answer, or a bare yes/no (only a clear yes approves).

    Example:
        >>> read_answer({"approve": True, "by": "alice", "comment": "known payee"})
        (True, 'alice', 'known payee')
        >>> read_answer("yes"), read_answer("maybe"), read_answer(True)
        ((True, None, None), (False, None, None), (True, None, None))
    """
    if isinstance(response, Mapping):
        approve = response.get("approve", response.get("approved")) is True
        by, comment = response.get("by"), response.get("comment")
        return approve, None if by is None else str(by), None if comment is None else str(comment)
    if isinstance(response, str):
        return response.strip().lower() in _YES, None, None
    return response is True, None, None
