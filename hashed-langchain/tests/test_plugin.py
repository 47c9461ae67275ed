"""Zero-code guarding: unmodified LangChain scripts in a subprocess, guarded only by the environment.

Each script runs once unguarded (the tool runs), then through the same start-up as `hashed run` (a bootstrap that
calls `hashed.instrument()`, which loads this adapter through its `hashed` entry point). The ledger the subprocess
wrote is then read back and verified here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import hashed_langchain
from hashed import Hashed
from hashed.identity import Identity, save_identity
from hashed.testing import FIXED_SEED, make_hashed
from hashed_langchain import _plugin

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = (
    "import hashed, sys; hashed.instrument(); sys.argv = ['{0}']; exec(compile(open('{0}').read(), '{0}', 'exec'))"
)
POLICY = """
version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits: {amount: {max: 1000}}
  - id: no-delete
    tools: [delete_file]
    effect: deny
    reason: Agents never delete files.
"""
FAKE_MODEL = '''
import sys

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool


class ScriptedModel(FakeMessagesListChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


@tool
def transfer_money(to: str, amount: float) -> str:
    """Send money."""
    sys.stdout.write(f"RAN transfer_money {to} {amount}\\n")  # one write: parallel tool calls print at once
    return "sent"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    sys.stdout.write(f"RAN delete_file {path}\\n")
    return "deleted"
'''
AGENT_SCRIPT = (
    FAKE_MODEL
    + """
from langchain.agents import create_agent

calls = [
    {"name": "delete_file", "args": {"path": "/etc/passwd"}, "id": "c1"},
    {"name": "transfer_money", "args": {"to": "acct-9", "amount": 50}, "id": "c2"},
]
model = ScriptedModel(responses=[AIMessage("", tool_calls=calls), AIMessage("all done")])
agent = create_agent(model, [delete_file, transfer_money], name="ops-bot")
result = agent.invoke({"messages": [("user", "tidy up and pay")]}, {"configurable": {"thread_id": "t-1"}})
for message in result["messages"][2:]:
    print("MODEL SAW", type(message).__name__, message.content)
"""
)
CHAIN_SCRIPT = (
    FAKE_MODEL
    + """
for tool_, args in [(delete_file, {"path": "/etc/passwd"}), (transfer_money, {"to": "acct-9", "amount": 50})]:
    try:
        print("RESULT", tool_.invoke(args))
    except Exception as exc:
        print("FAILED", type(exc).__name__, exc)
"""
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Hashed project as `hashed init` leaves it: policy file and encrypted agent key."""
    home = tmp_path / ".hashed"
    home.mkdir()
    (home / "policy.yaml").write_text(POLICY)
    save_identity(Identity.from_seed(FIXED_SEED), home / "agent.key", "test passphrase")
    (tmp_path / "agent.py").write_text(AGENT_SCRIPT)
    (tmp_path / "chain.py").write_text(CHAIN_SCRIPT)
    return tmp_path


def _run(project: Path, script: str, *, guarded: bool) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHED_", "LANGCHAIN_", "LANGSMITH_"))}
    env |= {"HASHED_HOME": str(project / ".hashed"), "HASHED_KEY_PASSPHRASE": "test passphrase"}
    command = [sys.executable, "-c", BOOTSTRAP.format(script)] if guarded else [sys.executable, script]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ledger(project: Path) -> Hashed:
    return make_hashed(project / ".hashed")  # the same fixed key the subprocess decrypted from agent.key


def test_entry_point_is_registered_and_import_cheap():
    [entry] = [e for e in entry_points(group="hashed") if e.name == "langchain"]
    assert entry.value == "hashed_langchain._plugin"
    code = "import sys, hashed_langchain._plugin; print(sorted(m for m in sys.modules if m.startswith('lang')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_unmodified_agent_script_is_unguarded_without_hashed(project: Path):
    out = _run(project, "agent.py", guarded=False)
    assert "RAN delete_file /etc/passwd" in out
    assert not (project / ".hashed" / "ledger.db").exists()


@pytest.mark.slow
def test_unmodified_agent_script_is_guarded_by_instrument(project: Path):
    out = _run(project, "agent.py", guarded=True)
    assert "RAN delete_file" not in out
    assert "RAN transfer_money acct-9 50.0" in out
    assert "MODEL SAW ToolMessage delete_file denied by policy (rule no-delete): Agents never delete files." in out
    assert "MODEL SAW AIMessage all done" in out
    with _ledger(project) as ledger:
        records = list(ledger.ledger.records())
        decisions = {r.body["call_id"]: r for r in records if r.kind == "decision"}
        assert {k: d.body["effect"] for k, d in decisions.items()} == {"c1": "deny", "c2": "allow"}
        assert {(d.body["agent"], d.body["run_id"], d.body["framework"]) for d in decisions.values()} == {
            ("ops-bot", "t-1", "langchain")
        }
        [outcome] = [r for r in records if r.kind == "outcome"]
        assert (outcome.body["call"], outcome.body["status"]) == (decisions["c2"].body["call"], "ok")
        report = ledger.verify()
        assert report.ok and report.count == 3 and report.unsigned == 0


@pytest.mark.slow
def test_unmodified_chain_script_is_guarded_by_instrument(project: Path):
    assert "RAN delete_file" in _run(project, "chain.py", guarded=False)
    out = _run(project, "chain.py", guarded=True)
    assert "RAN delete_file" not in out
    assert "FAILED PolicyDenied delete_file denied by policy (rule no-delete): Agents never delete files." in out
    assert "RESULT sent" in out
    with _ledger(project) as ledger:
        kinds = [(r.kind, r.body.get("effect"), r.body["tool"]) for r in ledger.ledger.records()]
        assert kinds == [
            ("decision", "deny", "delete_file"),
            ("decision", "allow", "transfer_money"),
            ("outcome", None, "transfer_money"),
        ]
        assert ledger.verify().ok


@pytest.mark.slow
def test_example_runs_as_written(project: Path):
    example = REPO / "examples" / "langchain_agent.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHED_", "LANGCHAIN_", "LANGSMITH_"))}
    env["HASHED_KEY_PASSPHRASE"] = "test passphrase"  # the project's key signs, so the ledger can be read back here
    done = subprocess.run(
        [sys.executable, str(example), str(project / ".hashed")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    out = done.stdout
    assert "tool ran: transfer_money(to='acct-9', amount=120.0)" in out
    assert "tool ran: delete_file" not in out
    assert "model saw: delete_file denied by policy (rule never-delete): Agents never delete data." in out
    assert "model saw: transfer_money denied by policy (rule small-transfers): amount=5000.0 is over the limit" in out
    assert "ledger verified: 4 records" in out
    with _ledger(project) as ledger:
        records = list(ledger.ledger.records())
        assert ledger.verify().ok
    effects = sorted((r.body["tool"], r.body.get("effect") or r.body["status"]) for r in records)
    assert effects == [
        ("delete_file", "deny"),
        ("transfer_money", "allow"),
        ("transfer_money", "deny"),
        ("transfer_money", "ok"),
    ]


def test_instrument_is_idempotent_and_wraps_langchains_tool_runs_once():
    from langchain_core.tools import BaseTool

    hashed_langchain.instrument()
    run, arun = BaseTool.run, BaseTool.arun
    hashed_langchain.instrument()
    assert (BaseTool.run, BaseTool.arun) == (run, arun)
    assert run.__wrapped__ is not run  # functools.wraps keeps LangChain's signature and docstring
    _plugin.uninstrument()
    assert BaseTool.run is run  # inert outside a scope: a middleware built later still finds it in place


def test_middleware_and_instrument_together_decide_each_call_once(guarded, toolbox, kit):
    import langchain.agents

    from hashed_langchain import HashedMiddleware

    hashed_langchain.instrument(guarded)
    model = kit.script([("read_file", {"path": "/a"})])
    mine = HashedMiddleware(guarded, agent="mine")
    agent = langchain.agents.create_agent(model, toolbox.sync_tools(), middleware=[mine])
    agent.invoke({"messages": [("user", "go")]})
    records = kit.records(guarded)
    assert [(r.kind, r.body["agent"]) for r in records] == [("decision", "mine"), ("outcome", "mine")]
    kit.assert_verifies(guarded)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["hashed run", "HASHED_INSTRUMENT=1"])
def test_unmodified_agent_script_is_guarded_by_the_launcher(project: Path, launcher: str):
    """The real zero-code path: `hashed run -- python agent.py` (or the variable it sets) and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHED_", "LANGCHAIN_", "LANGSMITH_"))}
    env |= {"HASHED_HOME": str(project / ".hashed"), "HASHED_KEY_PASSPHRASE": "test passphrase"}
    if launcher == "hashed run":
        command = [sys.executable, "-m", "hashed.cli", "run", "--", sys.executable, "agent.py"]
    else:
        env["HASHED_INSTRUMENT"] = "1"
        command = [sys.executable, "agent.py"]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "RAN delete_file" not in done.stdout
    assert "RAN transfer_money acct-9 50.0" in done.stdout
    assert "MODEL SAW ToolMessage delete_file denied by policy (rule no-delete)" in done.stdout
    with _ledger(project) as ledger:
        records = list(ledger.ledger.records())  # the two tool calls run in parallel: order them by tool
        assert sorted((r.body["tool"], r.kind, r.body.get("effect")) for r in records) == [
            ("delete_file", "decision", "deny"),
            ("transfer_money", "decision", "allow"),
            ("transfer_money", "outcome", None),
        ]
        assert ledger.verify().ok
