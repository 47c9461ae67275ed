"""Pure translations between LangChain's objects and Hashed's `ToolCall`/`Outcome`; no policy, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException

from hashed.adapters import Decision, Outcome, ToolCall, outcome, tool_call

__all__ = ["FRAMEWORK", "callback_call", "refusal", "request_call", "result_outcome"]

FRAMEWORK = "langchain"


def request_call(call: Mapping[str, Any], metadata: Mapping[str, Any] | None, agent: str | None = None) -> ToolCall:
    """The `ToolCall` of an agent's tool call (`{name, args, id}`) and the run's config metadata.

    The agent is `agent` if given, else `create_agent(name=...)` (metadata `lc_agent_name`, langchain>=1.1);
    the run is the checkpointer's `thread_id`.

    Example:
        >>> meta = {"lc_agent_name": "ops", "thread_id": 7}
        >>> c = request_call({"name": "rm", "args": {"path": "/x"}, "id": "c1"}, meta)
        >>> (c.tool, c.agent, c.run_id, c.call_id, c.framework)
        ('rm', 'ops', '7', 'c1', 'langchain')
    """
    meta = metadata or {}
    return tool_call(
        str(call["name"]),
        call.get("args"),
        framework=FRAMEWORK,
        agent=agent or meta.get("lc_agent_name"),
        run_id=meta.get("thread_id"),
        call_id=call.get("id"),
    )


def callback_call(
    serialized: Mapping[str, Any] | None,
    input_str: str,
    *,
    inputs: Any = None,
    metadata: Mapping[str, Any] | None = None,
    name: str | None = None,
    tool_call_id: str | None = None,
    run_id: object = None,
    parent_run_id: object = None,
) -> ToolCall:
    """The `ToolCall` of a callback's `on_tool_start`: inside an agent it carries the same identity as the middleware.

    Outside an agent there is no tool call id, so the callback run id stands in for it.

    Example:
        >>> c = callback_call({"name": "search"}, "Oslo", inputs="Oslo", run_id="r1")
        >>> (c.tool, c.args, c.call_id, c.run_id)
        ('search', {'input': 'Oslo'}, 'r1', None)
    """
    meta = metadata or {}
    return tool_call(
        name or str((serialized or {}).get("name") or "tool"),
        input_str if inputs is None else inputs,
        framework=FRAMEWORK,
        agent=meta.get("lc_agent_name"),
        run_id=meta.get("thread_id"),
        call_id=run_id if tool_call_id is None else tool_call_id,
        parent_id=parent_run_id,
    )


def result_outcome(start: int, result: Any) -> Outcome:
    """The `Outcome` of a tool's result: a `ToolMessage` with status error (a handled tool error) is an error.

    Example:
        >>> result_outcome(0, ToolMessage("boom", tool_call_id="c1", status="error")).error
        ToolException('boom')
        >>> result_outcome(0, ToolMessage("sent", tool_call_id="c1")).result
        'sent'
    """
    if isinstance(result, ToolMessage):
        if result.status == "error":
            return outcome(start, error=ToolException(str(result.text)))
        return outcome(start, result=result.content)
    return outcome(start, result=result)


def refusal(call: Mapping[str, Any], decision: Decision) -> ToolMessage:
    """The `ToolMessage` the model sees instead of the tool's result: the core's refusal text, status error.

    Example:
        >>> from hashed.adapters import Effect
        >>> d = Decision(Effect.DENY, "no", None, "ab", "c", tool="rm")
        >>> refusal({"name": "rm", "args": {}, "id": "c1"}, d).content
        'rm denied by policy: no'
    """
    return ToolMessage(
        content=decision.refusal_message, tool_call_id=str(call.get("id")), name=str(call["name"]), status="error"
    )
