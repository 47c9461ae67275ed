"""`HashedWorkbench` on real `AssistantAgent` runs: a real MCP server on stdio, a workbench that fails, a guard that
fails. Nothing may raise out of `call_tool` (AutoGen 0.7's `run()` would wait for ever), and nothing refused runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core.tools import StaticWorkbench, ToolResult, Workbench

from hashed.plugins import hookimpl
from hashed.testing import make_hashed
from hashed_autogen import HashedWorkbench, guard_tools

QUERIES = """
version: 1
default: deny
rules:
  - id: queries
    tools: [run_query]
    effect: allow
  - id: no-prod
    tools: [run_query]
    effect: deny
    when: {database: {eq: prod}}
    reason: Agents never touch the production database.
  - id: transfers
    tools: [transfer_money]
    effect: allow
"""
SERVER = '''
import json, sys
from mcp.server.fastmcp import FastMCP

server = FastMCP("db")


@server.tool()
def run_query(sql: str, database: str = "prod") -> str:
    """Run SQL."""
    with open(sys.argv[1], "a") as log:
        log.write(json.dumps({"sql": sql, "database": database}) + "\\n")
    if sql == "boom":
        raise ValueError("syntax error near boom")
    return f"ran on {database}"


server.run()
'''


@pytest.fixture
def queries(tmp_path, hashed_clock):
    with make_hashed(tmp_path / ".hashed", policy=QUERIES, clock=hashed_clock) as hashed:
        yield hashed


@pytest.mark.slow
async def test_an_mcp_server_runs_only_what_policy_allowed(queries, kit, tmp_path):
    from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams

    (tmp_path / "server.py").write_text(SERVER)
    ran = tmp_path / "ran.jsonl"
    params = StdioServerParams(command=sys.executable, args=[str(tmp_path / "server.py"), str(ran)])
    calls = [
        ("run_query", {"sql": "drop table t"}),  # the server's default database is prod
        ("run_query", {"sql": "select 1", "database": "dev"}),
        ("run_query", {"sql": "boom", "database": "dev"}),
    ]
    async with McpWorkbench(params) as mcp:
        bot = AssistantAgent(
            "dba", model_client=kit.replay(calls), workbench=HashedWorkbench(mcp, queries, agent="dba")
        )
        task = await kit.timed(bot.run(task="query"))
    got = kit.results(task)
    assert got["c0"].is_error and "never touch the production database" in got["c0"].content
    assert (got["c1"].content, got["c1"].is_error) == ("ran on dev", False)
    assert got["c2"].is_error and "syntax error near boom" in got["c2"].content
    ran_with = [json.loads(line) for line in ran.read_text().splitlines()]
    assert sorted(r["sql"] for r in ran_with) == ["boom", "select 1"]
    by_call = {d.body["call_id"]: d.body for d in kit.decisions(queries)}
    assert by_call["c0"]["args"] == {"sql": "drop table t", "database": "prod"}  # the schema's default, decided
    assert (by_call["c0"]["effect"], by_call["c1"]["effect"], by_call["c2"]["effect"]) == ("deny", "allow", "allow")
    assert {d["agent"] for d in by_call.values()} == {"dba"}
    outcomes = {r.body["call"]: r.body for r in kit.records(queries) if r.kind == "outcome"}
    assert outcomes[by_call["c1"]["call"]]["status"] == "ok"
    assert outcomes[by_call["c2"]["call"]]["status"] == "error"
    assert "syntax error near boom" in outcomes[by_call["c2"]["call"]]["error"]
    kit.assert_verifies(queries)


class Broken(Workbench):
    """A workbench whose calls raise, as McpWorkbench does when its server is gone."""

    def __init__(self) -> None:
        self.calls = 0

    async def list_tools(self):
        return [{"name": "run_query", "description": "Run SQL.", "parameters": {"type": "object", "properties": {}}}]

    async def call_tool(self, name, arguments=None, cancellation_token=None, call_id=None) -> ToolResult:
        self.calls += 1
        raise RuntimeError("Actor is not initialized")

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reset(self) -> None: ...

    async def save_state(self) -> Mapping[str, Any]:
        return {}

    async def load_state(self, state: Mapping[str, Any]) -> None: ...


async def test_a_workbench_that_raises_gives_an_error_result_and_the_run_ends(queries, kit):
    broken = Broken()
    client = kit.replay([("run_query", {"sql": "select 1", "database": "dev"})])
    bot = AssistantAgent("dba", model_client=client, workbench=HashedWorkbench(broken, queries))
    task = await kit.timed(bot.run(task="query"))
    [result] = kit.results(task).values()
    assert (result.is_error, result.content) == (True, "Actor is not initialized")
    assert broken.calls == 1
    decision, outcome = kit.records(queries)
    assert (decision.body["effect"], outcome.body["status"]) == ("allow", "error")
    assert outcome.body["error"] == "RuntimeError: Actor is not initialized"


@pytest.mark.parametrize("raises", [True, False], ids=["guard-raises", "guard-denies"])
async def test_a_failure_inside_the_guard_blocks_the_call_and_the_run_ends(tmp_path, toolbox, kit, raises):
    class Failing:
        @hookimpl
        def hashed_decide(self) -> None:
            raise NotImplementedError("a plugin bug")

    with make_hashed(tmp_path / "h", policy=QUERIES, raise_internal_errors=raises) as hashed:
        hashed.plugins.register(Failing())  # with internal errors raised, the guard itself raises
        client = kit.replay([("transfer_money", {"to": "acct-9", "amount": 5})])
        workbench = HashedWorkbench(StaticWorkbench(toolbox.tools()), hashed)
        task = await kit.timed(AssistantAgent("ops", model_client=client, workbench=workbench).run(task="pay"))
        records = kit.records(hashed)
    assert toolbox.executed == []
    [result] = kit.results(task).values()
    assert result.is_error and "a plugin bug" in result.content
    if raises:
        assert records == []  # the guard raised before any record: nothing ran, nothing claims it did
    else:
        [decision] = records
        assert decision.body["effect"] == "deny" and "NotImplementedError: a plugin bug" in decision.body["reason"]


async def test_guarded_tools_in_a_guarded_workbench_are_decided_once(queries, toolbox, kit):
    inner = StaticWorkbench(guard_tools(toolbox.tools(), queries))
    client = kit.replay([("transfer_money", {"to": "acct-9", "amount": 5}), ("delete_file", {"path": "/x"})])
    bot = AssistantAgent("ops", model_client=client, workbench=HashedWorkbench(inner, queries, agent="ops"))
    await kit.timed(bot.run(task="go"))
    assert [name for name, _ in toolbox.executed] == ["transfer_money"]
    effects = sorted((d.body["tool"], d.body["effect"]) for d in kit.decisions(queries))
    assert effects == [("delete_file", "deny"), ("transfer_money", "allow")]


async def test_strict_mode_in_a_workbench_is_an_error_result_never_a_hang(queries, toolbox, kit):
    queries.settings = queries.settings.model_copy(update={"strict": True})
    client = kit.replay([("delete_file", {"path": "/x"})])
    bot = AssistantAgent(
        "ops", model_client=client, workbench=HashedWorkbench(StaticWorkbench(toolbox.tools()), queries)
    )
    task = await kit.timed(bot.run(task="go"))
    assert toolbox.executed == []
    [result] = kit.results(task).values()
    assert result.is_error and "delete_file denied by policy" in result.content
