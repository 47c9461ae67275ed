"""The pure translations, on real LangChain tools and plain data: what a tool body receives is what policy sees."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool, Tool, ToolException, tool
from langgraph.types import Command
from pydantic import BaseModel, Field

from hashed import Decision, Effect, ToolCall
from hashed_langchain._translate import FRAMEWORK, arguments, identity, parse, read_outcome, refusal


@tool
def run_query(sql: str, database: str = "prod") -> str:
    """Run SQL."""
    return "ok"


def test_omitted_defaults_are_what_the_body_sees():
    assert arguments(run_query, parse(run_query, {"sql": "drop table t"}, "c1"), coroutine=False) == {
        "sql": "drop table t",
        "database": "prod",
    }


def test_a_lone_string_is_the_first_parameter_by_name():
    @tool
    def write_file(path: str, mode: str = "w") -> str:
        """Write a file."""
        return "ok"

    assert arguments(write_file, parse(write_file, "/etc/passwd", None), coroutine=False) == {
        "path": "/etc/passwd",
        "mode": "w",
    }


def test_a_legacy_single_input_tool_binds_its_function_parameter():
    def search(query: str) -> str:
        return query

    legacy = Tool(name="search", func=search, description="Search.")
    assert arguments(legacy, parse(legacy, "weather in Oslo", None), coroutine=False) == {"query": "weather in Oslo"}


def test_schema_defaults_and_factories_of_an_args_schema_apply():
    class Pay(BaseModel):
        to: str
        amount: float = 10.0
        tags: list[str] = Field(default_factory=lambda: ["auto"])

    def pay(to: str, amount: float = 10.0, tags: list[str] | None = None) -> str:
        return "paid"

    structured = StructuredTool.from_function(pay, args_schema=Pay, name="pay", description="Pay.")
    assert arguments(structured, parse(structured, {"to": "acct-9"}, None), coroutine=False) == {
        "to": "acct-9",
        "amount": 10.0,
        "tags": ["auto"],
    }


def test_injected_arguments_and_config_are_not_the_models_and_are_left_out():
    @tool
    def traced(path: str, call_id: Annotated[str, InjectedToolCallId], config: RunnableConfig) -> str:
        """A tool LangChain hands its call id and config."""
        return "ok"

    assert arguments(traced, parse(traced, {"path": "/x"}, "c9"), coroutine=False) == {"path": "/x"}


def test_a_custom_tool_class_binds_its_own_run_method():
    class Transfer(BaseTool):
        name: str = "transfer_money"
        description: str = "Send money."

        def _run(self, to: str, amount: float = 50.0, run_manager: Any = None) -> str:
            return "sent"

    transfer = Transfer()
    assert arguments(transfer, parse(transfer, {"to": "acct-9"}, None), coroutine=False) == {
        "to": "acct-9",
        "amount": 50.0,
    }


def test_coroutine_tools_bind_their_coroutine():
    async def fetch(url: str, timeout: float = 3.0) -> str:
        return url

    structured = StructuredTool.from_function(coroutine=fetch, name="fetch", description="Fetch.")
    assert arguments(structured, parse(structured, {"url": "http://x"}, None), coroutine=True) == {
        "url": "http://x",
        "timeout": 3.0,
    }


def test_input_the_tools_own_schema_refuses_raises():
    with pytest.raises(Exception, match="sql"):
        parse(run_query, {"database": "dev"}, None)


def test_identity_carries_agent_thread_and_parent_run():
    parent = uuid.uuid4()
    manager = CallbackManager(handlers=[], parent_run_id=parent)
    config = {"metadata": {"lc_agent_name": "billing-bot", "thread_id": "t-42"}, "callbacks": manager}
    assert identity(config) == {"agent": "billing-bot", "run_id": "t-42", "parent_id": parent}
    assert identity(config, "ops")["agent"] == "ops"
    assert identity(None) == {"agent": None, "run_id": None, "parent_id": None}
    assert FRAMEWORK == "langchain"


@pytest.mark.parametrize(
    ("result", "ok", "recorded"),
    [
        (ToolMessage("sent", tool_call_id="c1"), True, "sent"),
        ("raw value", True, "raw value"),
        (ToolMessage("bank is down", tool_call_id="c1", status="error"), False, None),
    ],
)
def test_read_outcome(result, ok, recorded):
    out = read_outcome(result, 7)
    assert out.ok is ok
    assert out.duration_ns == 7
    if ok:
        assert out.result == recorded
    else:
        assert isinstance(out.error, ToolException)
        assert str(out.error) == "bank is down"


def test_read_outcome_keeps_a_command():
    command = Command(update={"messages": []})
    assert read_outcome(command, 1).result is command


def test_refusal_is_an_error_tool_message_with_the_core_wording():
    decision = Decision(Effect.DENY, "Agents never delete files.", "no-delete", "ab", "ref", tool="delete_file")
    message = refusal("c3", "delete_file")(decision, ToolCall("delete_file"))
    assert (message.tool_call_id, message.name, message.status) == ("c3", "delete_file", "error")
    assert message.content == decision.refusal_message
