"""Zero-code guarding: an unmodified AutoGen script in a subprocess, guarded only by `hashed run` or the variable.

The script runs once unguarded (the tool runs), then through the real launchers, which load this adapter through
its `hashed` entry point. The ledger the subprocess wrote is then read back and verified here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from hashed.identity import Identity, save_identity
from hashed.testing import FIXED_SEED, make_hashed

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
AGENT_SCRIPT = """
import asyncio, json, sys

import pyautogen  # the name many users install: a shim that pulls autogen-agentchat
from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient


async def transfer_money(to: str, amount: float) -> str:
    sys.stdout.write(f"RAN transfer_money {to} {amount}\\n")
    return "sent"


async def delete_file(path: str) -> str:
    sys.stdout.write(f"RAN delete_file {path}\\n")
    return "deleted"


calls = [
    FunctionCall(id="c1", name="delete_file", arguments=json.dumps({"path": "/etc/passwd"})),
    FunctionCall(id="c2", name="transfer_money", arguments=json.dumps({"to": "acct-9", "amount": 50})),
]
usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
info = ModelInfo(vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False)
turn = CreateResult(finish_reason="function_calls", content=calls, usage=usage, cached=False)
client = ReplayChatCompletionClient([turn], model_info=info)
agent = AssistantAgent("ops_bot", model_client=client, tools=[transfer_money, delete_file])
result = asyncio.run(asyncio.wait_for(agent.run(task="tidy up and pay"), 60))
for done in result.messages[-2].content:
    print("MODEL SAW", done.call_id, done.is_error, done.content)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Hashed project as `hashed init` leaves it: policy file and encrypted agent key."""
    home = tmp_path / ".hashed"
    home.mkdir()
    (home / "policy.yaml").write_text(POLICY)
    save_identity(Identity.from_seed(FIXED_SEED), home / "agent.key", "test passphrase")
    (tmp_path / "agent.py").write_text(AGENT_SCRIPT)
    return tmp_path


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}
    return env | {"HASHED_HOME": str(project / ".hashed"), "HASHED_KEY_PASSPHRASE": "test passphrase"}


def test_entry_point_is_registered_and_import_cheap():
    [entry] = [e for e in entry_points(group="hashed") if e.name == "autogen"]
    assert entry.value == "hashed_autogen._plugin"
    code = "import sys, hashed_autogen._plugin; print(sorted(m for m in sys.modules if m.startswith('autogen')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_the_adapter_needs_only_what_pyautogen_installs():
    """`pip install pyautogen hashed-autogen` is enough: no autogen-ext, which pyautogen does not pull in."""
    ours = {Requirement(r).name for r in requires("hashed-autogen") or [] if "extra ==" not in r}
    pulled = {Requirement(r).name for r in requires("pyautogen") or []}
    pulled |= {Requirement(r).name for r in requires("autogen-agentchat") or [] if "extra ==" not in r}
    assert ours - {"hashed-core"} <= pulled | {"autogen-agentchat"}
    code = (
        "import sys, hashed_autogen; hashed_autogen.guard_tools; hashed_autogen.HashedWorkbench; "
        "import hashed_autogen._hooks; print('autogen_ext' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_unmodified_agent_script_is_unguarded_without_hashed(project: Path):
    done = subprocess.run(
        [sys.executable, "agent.py"],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "RAN delete_file /etc/passwd" in done.stdout
    assert not (project / ".hashed" / "ledger.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["hashed run", "HASHED_INSTRUMENT=1"])
def test_unmodified_agent_script_is_guarded_by_the_launcher(project: Path, launcher: str):
    env = _env(project)
    if launcher == "hashed run":
        command = [sys.executable, "-m", "hashed.cli", "run", "--", sys.executable, "agent.py"]
    else:
        env["HASHED_INSTRUMENT"] = "1"
        command = [sys.executable, "agent.py"]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "RAN delete_file" not in done.stdout
    assert "RAN transfer_money acct-9 50.0" in done.stdout
    assert "MODEL SAW c1 True delete_file denied by policy (rule no-delete): Agents never delete files." in done.stdout
    assert "MODEL SAW c2 False sent" in done.stdout
    with make_hashed(project / ".hashed") as ledger:  # the same fixed key the subprocess decrypted from agent.key
        records = list(ledger.ledger.records())  # the two tool calls run concurrently: order them by tool
        assert sorted((r.body["tool"], r.kind, r.body.get("effect")) for r in records) == [
            ("delete_file", "decision", "deny"),
            ("transfer_money", "decision", "allow"),
            ("transfer_money", "outcome", None),
        ]
        assert {(r.body["agent"], r.body["framework"]) for r in records if r.kind == "decision"} == {
            ("ops_bot", "autogen")
        }
        assert ledger.verify().ok


@pytest.mark.slow
def test_example_runs_as_written(project: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}
    env["HASHED_KEY_PASSPHRASE"] = "test passphrase"  # the project's key signs, so the ledger can be read back here
    example = REPO / "examples" / "autogen_agent.py"
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
    assert (
        "model saw: transfer_money denied by policy (rule small-transfers): amount=5000.0 is over the limit of 1000"
        in out
    )
    assert "ledger verified: 4 records" in out
    with make_hashed(project / ".hashed") as ledger:
        effects = sorted((r.body["tool"], r.body.get("effect") or r.body["status"]) for r in ledger.ledger.records())
        assert ledger.verify().ok
    assert effects == [
        ("delete_file", "deny"),
        ("transfer_money", "allow"),
        ("transfer_money", "deny"),
        ("transfer_money", "ok"),
    ]
