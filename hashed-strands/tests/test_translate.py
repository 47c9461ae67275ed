"""The pure translations: what the body receives, who calls, what a result and an answer mean."""

from __future__ import annotations

import pytest
from strands import tool
from strands.interrupt import Interrupt
from strands.tools.tools import PythonAgentTool

from hashed import ToolCall
from hashed.adapters import started
from hashed_strands._translate import approval_reason, arguments, identity, read_answer, read_outcome, respond


@tool
def send(to: str, amount: float = 10.0, note: str | None = None, agent: object = None) -> str:
    """Send money."""
    return "sent"


def _use(value: object) -> dict[str, object]:
    return {"toolUseId": "t1", "name": "send", "input": value}


def test_a_decorated_tool_binds_as_its_body_receives():
    assert arguments(send, _use({"to": "a", "amount": "5"})) == {"to": "a", "amount": 5.0, "note": None}


def test_the_injected_agent_is_not_an_argument_even_when_the_model_sends_one():
    assert "agent" not in arguments(send, _use({"to": "a", "agent": "me"}))


@pytest.mark.parametrize("value", [{"amount": 5}, "a", None, {"to": "a", "amount": "lots"}])
def test_input_the_tool_would_refuse_cannot_be_bound(value):
    with pytest.raises(ValueError, match="Validation failed"):
        arguments(send, _use(value))


def test_a_module_tool_gets_its_input_with_the_spec_defaults_copied():
    spec = {
        "name": "q",
        "description": "Query.",
        "inputSchema": {"json": {"properties": {"db": {"default": ["prod"]}, "sql": {"type": "string"}}}},
    }
    module_tool = PythonAgentTool("q", spec, lambda tool_use, **kw: None)
    nested = {"rows": [1]}
    bound = arguments(module_tool, _use({"sql": "x", "opts": nested}))
    assert bound == {"db": ["prod"], "sql": "x", "opts": {"rows": [1]}}
    nested["rows"].append(2)
    bound["db"].append("dev")
    assert bound["opts"] == {"rows": [1]}  # a copy: what was decided cannot change under the decision
    assert spec["inputSchema"]["json"]["properties"]["db"]["default"] == ["prod"]
    with pytest.raises(TypeError, match="q takes an object of named arguments, not str"):
        arguments(module_tool, _use("x"))


def test_a_spec_of_an_unusual_shape_has_no_defaults():
    odd = PythonAgentTool("q", {"name": "q", "description": "", "inputSchema": {"json": "?"}}, lambda t, **k: None)
    assert arguments(odd, _use({"a": 1})) == {"a": 1}


def test_identity_leaves_out_strands_default_name():
    class Unnamed:
        name = "Strands Agents"

    assert identity(Unnamed()) == {"agent": None, "run_id": None}
    assert identity(Unnamed(), "ops") == {"agent": "ops", "run_id": None}


def test_read_outcome_keeps_the_exception_strands_hands_over():
    error = ValueError("bank is down")
    result = {"toolUseId": "t1", "status": "error", "content": [{"text": "Error: bank is down"}]}
    assert read_outcome(result, error, started()).error is error
    empty = read_outcome({"toolUseId": "t1", "status": "error", "content": []}, None, started())
    assert str(empty.error) == "the tool reported an error"


def test_respond_answers_the_interrupt_by_its_id():
    asked = Interrupt(id="v1:before_tool_call:t1:abc", name="hashed-approval", reason={})
    answer = respond(asked, approve=False, by="bob", comment="no")
    assert answer == {
        "interruptResponse": {
            "interruptId": "v1:before_tool_call:t1:abc",
            "response": {"approve": False, "by": "bob", "comment": "no"},
        }
    }
    assert read_answer(answer["interruptResponse"]["response"]) == (False, "bob", "no")


@pytest.mark.parametrize(
    ("response", "approved"),
    [
        ("y", True),
        (" Yes ", True),
        ("approve", True),
        ({"approved": True}, True),
        ({"approve": "yes"}, False),  # a mapping's answer is a boolean; anything else is no
        ("no", False),
        (1, False),
        (None, False),
        ({}, False),
    ],
)
def test_only_a_clear_yes_approves(response, approved):
    assert read_answer(response)[0] is approved


def test_approval_reason_is_the_request_as_the_ledger_keeps_it(hashed_offline):
    hashed_offline.set_policy(
        "version: 1\nredact: [card]\nrules:\n  - id: pay\n    tools: [send]\n    effect: allow\n"
        "    approval: {when: {amount: {gt: 5}}}\n"
    )
    decision = hashed_offline.check(ToolCall("send", {"amount": 9, "card": "4111"}))
    request = hashed_offline.approvals.get(decision.approval_id)
    reason = approval_reason(request)
    assert reason["approval"] == decision.approval_id
    assert reason["args"]["amount"] == 9
    assert reason["args"]["card"] != "4111"  # redacted as the ledger keeps it
