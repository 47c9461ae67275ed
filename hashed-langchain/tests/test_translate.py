"""The pure translations, on plain data: what LangChain hands over becomes the right ToolCall and Outcome."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from langgraph.types import Command

from hashed import Decision, Effect
from hashed_langchain._translate import FRAMEWORK, callback_call, refusal, request_call, result_outcome


def test_request_call_carries_agent_thread_and_call_id():
    call = request_call(
        {"name": "transfer_money", "args": {"to": "acct-9", "amount": 50}, "id": "call_abc", "type": "tool_call"},
        {"lc_agent_name": "billing-bot", "thread_id": "t-42", "langgraph_node": "tools"},
    )
    assert (call.tool, dict(call.args)) == ("transfer_money", {"to": "acct-9", "amount": 50})
    assert (call.agent, call.run_id, call.call_id, call.framework) == ("billing-bot", "t-42", "call_abc", FRAMEWORK)
    assert FRAMEWORK == "langchain"


def test_request_call_explicit_agent_wins_and_missing_metadata_is_none():
    call = request_call({"name": "t", "args": {}, "id": None}, None, agent="ops")
    assert (call.agent, call.run_id, call.call_id) == ("ops", None, None)
    assert request_call({"name": "t", "args": {}, "id": "x"}, {}).agent is None  # the core then uses its settings


def test_callback_call_inside_agent_uses_tool_call_id():
    run_id, parent = uuid.uuid4(), uuid.uuid4()
    call = callback_call(
        {"name": "delete_file", "description": "Delete a file."},
        "{'path': '/x'}",
        inputs={"path": "/x"},
        metadata={"lc_agent_name": "ops", "thread_id": "t1"},
        tool_call_id="c7",
        run_id=run_id,
        parent_run_id=parent,
    )
    assert (call.tool, dict(call.args), call.agent, call.run_id) == ("delete_file", {"path": "/x"}, "ops", "t1")
    assert (call.call_id, call.parent_id) == ("c7", str(parent))


def test_callback_call_outside_agent_falls_back_to_run_id_and_string_input():
    run_id = uuid.uuid4()
    call = callback_call({"name": "search"}, "weather in Oslo", run_id=run_id, name="web_search")
    assert (call.tool, dict(call.args), call.call_id, call.agent) == (
        "web_search",
        {"input": "weather in Oslo"},
        str(run_id),
        None,
    )


@pytest.mark.parametrize(
    ("result", "ok", "recorded"),
    [
        (ToolMessage("sent", tool_call_id="c1"), True, "sent"),
        ("raw value", True, "raw value"),
        (ToolMessage("bank is down", tool_call_id="c1", status="error"), False, None),
    ],
)
def test_result_outcome(result, ok, recorded):
    out = result_outcome(0, result)
    assert out.ok is ok
    assert out.duration_ns > 0
    if ok:
        assert out.result == recorded
    else:
        assert isinstance(out.error, ToolException)
        assert str(out.error) == "bank is down"


def test_result_outcome_keeps_a_command():
    command = Command(update={"messages": []})
    assert result_outcome(0, command).result is command


def test_refusal_is_an_error_tool_message_with_the_core_wording():
    decision = Decision(Effect.DENY, "Agents never delete files.", "no-delete", "ab", "ref", tool="delete_file")
    message = refusal({"name": "delete_file", "args": {}, "id": "c3"}, decision)
    assert (message.tool_call_id, message.name, message.status) == ("c3", "delete_file", "error")
    assert message.content == decision.refusal_message
