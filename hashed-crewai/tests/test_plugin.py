"""Zero-code guarding: an unmodified crew script in a subprocess, guarded only by the launcher or the environment.

The script runs once unguarded (the tool runs), then through `hashed run` and through `HASHED_INSTRUMENT=1`, which
load this adapter through its `hashed` entry point. The ledger each subprocess wrote is read back and verified here.
The subprocesses inherit the telemetry switches and the throw-away HOME that conftest.py sets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from crewai.hooks import get_after_tool_call_hooks, get_before_tool_call_hooks
from crewai.tools import BaseTool
from crewai.tools.base_tool import Tool
from crewai.tools.structured_tool import CrewStructuredTool

import hashed_crewai
from hashed import FrameworkVersionError, Hashed
from hashed.identity import Identity, save_identity
from hashed.testing import FIXED_SEED, make_hashed
from hashed_crewai import _hooks

REPO = Path(__file__).resolve().parents[2]
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
CREW_SCRIPT = '''
import json, sys

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool


@tool("transfer_money")
def transfer_money(to: str, amount: float) -> str:
    """Send money."""
    sys.stdout.write(f"RAN transfer_money {to} {amount}\\n")
    return "sent"


@tool("delete_file")
def delete_file(path: str) -> str:
    """Delete a file."""
    sys.stdout.write(f"RAN delete_file {path}\\n")
    return "deleted"


class ScriptedLLM(BaseLLM):
    answers: list = [
        'Thought: tidy up.\\nAction: delete_file\\nAction Input: {"path": "/etc/passwd"}',
        'Thought: pay.\\nAction: transfer_money\\nAction Input: {"to": "acct-9", "amount": 50}',
        "Thought: I now know the final answer\\nFinal Answer: all done",
    ]
    seen: list = []

    def call(self, messages, *args, **kwargs):
        self.seen = list(messages)
        return self.answers.pop(0)


llm = ScriptedLLM(model="scripted")
ops = Agent(role="ops-bot", goal="Tidy up and pay.", backstory="A clerk.", llm=llm, tools=[delete_file, transfer_money])
chores = Task(description="Tidy up, pay.", expected_output="Done.", agent=ops)
print("RESULT", Crew(agents=[ops], tasks=[chores]).kickoff().raw)
for message in llm.seen:
    if "Observation: " in str(message.get("content")):
        print("MODEL SAW", message["content"].split("Observation: ", 1)[1])
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Hashed project as `hashed init` leaves it: policy file and encrypted agent key, and the crew script."""
    home = tmp_path / ".hashed"
    home.mkdir()
    (home / "policy.yaml").write_text(POLICY)
    save_identity(Identity.from_seed(FIXED_SEED), home / "agent.key", "test passphrase")
    (tmp_path / "crew.py").write_text(CREW_SCRIPT)
    return tmp_path


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}
    return env | {"HASHED_HOME": str(project / ".hashed"), "HASHED_KEY_PASSPHRASE": "test passphrase"}


def _ledger(project: Path) -> Hashed:
    return make_hashed(project / ".hashed")  # the same fixed key the subprocess decrypted from agent.key


def test_entry_point_is_registered_and_import_cheap():
    [entry] = [e for e in entry_points(group="hashed") if e.name == "crewai"]
    assert entry.value == "hashed_crewai._plugin"
    code = "import sys, hashed_crewai, hashed_crewai._plugin; print(sorted(m for m in sys.modules if 'crewai' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['hashed_crewai', 'hashed_crewai._plugin', 'hashed_crewai._version']"


def test_instrument_is_idempotent_and_hooks_crewai_once(guarded):
    hashed_crewai.instrument(guarded)
    run, invoke = BaseTool.run, CrewStructuredTool.invoke
    hashed_crewai.instrument(guarded)
    assert (BaseTool.run, CrewStructuredTool.invoke) == (run, invoke)
    assert run.__wrapped__ is not run and Tool.run.__wrapped__ is not Tool.run  # CrewAI's own, kept by functools
    assert get_before_tool_call_hooks().count(_hooks.before_tool_call) == 1
    assert _hooks.after_tool_call not in get_after_tool_call_hooks()  # only while a refusal waits for it


def test_instrument_refuses_a_crewai_too_old_to_block_every_call(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda dist: "1.15.28" if dist == "crewai" else real(dist))
    with pytest.raises(FrameworkVersionError, match=r"crewai>=1\.15\.29"):
        hashed_crewai.instrument()


@pytest.mark.slow
def test_unmodified_crew_script_runs_its_tools_without_hashed(project: Path):
    done = subprocess.run(
        [sys.executable, "crew.py"], cwd=project, env=_env(project), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "RAN delete_file /etc/passwd" in done.stdout
    assert not (project / ".hashed" / "ledger.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["hashed run", "HASHED_INSTRUMENT=1"])
def test_unmodified_crew_script_is_guarded_by_the_launcher(project: Path, launcher: str):
    """The real zero-code path: `hashed run -- python crew.py` (or the variable it sets) and nothing else."""
    env = _env(project)
    if launcher == "hashed run":
        command = [sys.executable, "-m", "hashed.cli", "run", "--", sys.executable, "crew.py"]
    else:
        env["HASHED_INSTRUMENT"] = "1"
        command = [sys.executable, "crew.py"]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "RAN delete_file" not in done.stdout
    assert "RAN transfer_money acct-9 50.0" in done.stdout
    assert "MODEL SAW delete_file denied by policy (rule no-delete): Agents never delete files." in done.stdout
    assert "RESULT all done" in done.stdout
    with _ledger(project) as ledger:
        records = list(ledger.ledger.records())
        assert [(r.kind, r.body["tool"], r.body.get("effect")) for r in records] == [
            ("decision", "delete_file", "deny"),
            ("decision", "transfer_money", "allow"),
            ("outcome", "transfer_money", None),
        ]
        assert {(r.body["agent"], r.body["framework"]) for r in records if r.kind == "decision"} == {
            ("ops-bot", "crewai")
        }
        report = ledger.verify()
        assert report.ok and report.count == 3 and report.unsigned == 0


@pytest.mark.slow
def test_example_runs_as_written(project: Path):
    env = _env(project)
    env.pop("HASHED_HOME")  # the example is given its folder
    example = REPO / "examples" / "crewai_agent.py"
    done = subprocess.run(
        [sys.executable, str(example), str(project / ".hashed")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
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
