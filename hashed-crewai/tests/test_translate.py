"""The translations, on CrewAI's own tool objects: what policy sees is what the body receives."""

from __future__ import annotations

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool, tool
from pydantic import BaseModel, Field

from hashed_crewai import guard_tool
from hashed_crewai._translate import body_of, identity, parse_input, parse_kwargs


@tool("run_query")
def run_query(sql: str, database: str = "prod", limit: int = 10) -> str:
    """Run SQL."""
    return sql


class RenameInput(BaseModel):
    source: str
    target: str = Field(default="/tmp/out")


class Rename(BaseTool):
    name: str = "rename"
    description: str = "Rename a file."
    args_schema: type[BaseModel] = RenameInput

    def _run(self, source: str, target: str = "/tmp/out", force: bool = False) -> str:
        return target


def test_identity_names_the_agent_role_the_crew_and_the_task():
    agent = Agent(role="billing-bot", goal="Pay.", backstory="A clerk.")
    task = Task(description="Pay.", expected_output="Done.", agent=agent)
    crew = Crew(agents=[agent], tasks=[task])
    assert identity(agent, task, crew) == {"agent": "billing-bot", "run_id": crew.id, "parent_id": task.id}
    assert identity(agent, None, None) == {"agent": "billing-bot", "run_id": None, "parent_id": None}


def test_parse_input_is_the_schema_parse_the_body_receives():
    structured = run_query.to_structured_tool()
    assert parse_input(structured, {"sql": "select 1", "limit": "5", "junk": 1}) == {
        "sql": "select 1",
        "database": "prod",
        "limit": 5,
    }
    assert parse_input(structured, '{"sql": "select 1"}') == {"sql": "select 1", "database": "prod", "limit": 10}
    with pytest.raises(ValueError, match="validation failed"):
        parse_input(structured, {"limit": "many"})


def test_parse_kwargs_follows_the_schema_then_the_body():
    assert parse_kwargs(Rename(), (), {"source": "/a"}) == {"source": "/a", "target": "/tmp/out"}
    assert parse_kwargs(Rename(), ("/a",), {}) == {"source": "/a", "target": "/tmp/out", "force": False}
    with pytest.raises(TypeError):
        parse_kwargs(run_query, ("a", "b", 1, "extra"), {})


def test_the_body_of_a_guarded_tool_is_the_body_it_wraps():
    assert body_of(run_query) is run_query.func
    assert body_of(guard_tool(run_query)) is run_query.func
    rename = Rename()
    assert body_of(guard_tool(rename)) == rename._run
    assert parse_kwargs(guard_tool(run_query), ("select 1",), {}) == {
        "sql": "select 1",
        "database": "prod",
        "limit": 10,
    }


def test_guard_tool_keeps_name_description_and_arguments():
    guarded = guard_tool(run_query)
    assert (guarded.name, guarded.description, guarded.args_schema) == (
        run_query.name,
        run_query.description,
        run_query.args_schema,
    )
    assert guarded.formatted_description == run_query.formatted_description  # what the model is shown
    assert guarded.wrapped is run_query
