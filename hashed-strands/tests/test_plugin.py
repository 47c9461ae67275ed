"""Zero-code guarding: unmodified Strands scripts in a subprocess, guarded only by the environment.

Each script runs once unguarded (the tool runs), then through `hashed run`, `HASHED_INSTRUMENT=1`, or a bootstrap
that calls `hashed.instrument()`: each loads this adapter through its `hashed` entry point, which patches
`strands.agent.agent.Agent.__init__`. The ledger the subprocess wrote is then read back and verified here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import hashed_strands
from hashed import FrameworkVersionError, Hashed
from hashed.identity import Identity, save_identity
from hashed.testing import FIXED_SEED, make_hashed
from hashed_strands import _plugin

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
AGENT_SCRIPT = '''
import json, sys

from strands import Agent, tool
from strands.models.model import Model


class ScriptedModel(Model):
    """Asks for two tool calls at once, then answers."""

    def __init__(self):
        self.turns = [[("delete_file", {"path": "/etc/passwd"}), ("transfer_money", {"to": "acct-9", "amount": 50})]]

    def update_config(self, **kwargs):
        pass

    def get_config(self):
        return {}

    async def structured_output(self, *args, **kwargs):
        yield

    async def stream(self, messages, tool_specs=None, system_prompt=None, **kwargs):
        yield {"messageStart": {"role": "assistant"}}
        calls = self.turns.pop(0) if self.turns else []
        for i, (name, args) in enumerate(calls):
            yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": f"c{i + 1}"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(args)}}}}
            yield {"contentBlockStop": {}}
        if not calls:
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": "all done"}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "tool_use" if calls else "end_turn"}}


@tool
def transfer_money(to: str, amount: float) -> str:
    """Send money."""
    sys.stdout.write(f"RAN transfer_money {to} {amount}\\n")  # one write: concurrent tool calls print at once
    return "sent"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    sys.stdout.write(f"RAN delete_file {path}\\n")
    return "deleted"


agent = Agent(model=ScriptedModel(), tools=[delete_file, transfer_money], name="ops-bot", callback_handler=None)
print("ANSWER", str(agent("tidy up and pay")).strip())
for message in agent.messages:
    for block in message["content"]:
        if "toolResult" in block:
            result = block["toolResult"]
            print("MODEL SAW", result["toolUseId"], result["status"], result["content"][0]["text"])
direct = agent.tool.delete_file(path="/tmp/x")
print("DIRECT", direct["status"], direct["content"][0]["text"])
'''


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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHED_", "OTEL_", "AWS_"))}
    return env | {"HASHED_HOME": str(project / ".hashed"), "HASHED_KEY_PASSPHRASE": "test passphrase"}


def _run(project: Path, command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ledger(project: Path) -> Hashed:
    return make_hashed(project / ".hashed")  # the same fixed key the subprocess decrypted from agent.key


def test_entry_point_is_registered_and_import_cheap():
    [entry] = [e for e in entry_points(group="hashed") if e.name == "strands"]
    assert entry.value == "hashed_strands._plugin"
    code = "import sys, hashed_strands._plugin; print(sorted(m for m in sys.modules if m.split('.')[0] == 'strands'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_unmodified_script_is_unguarded_without_hashed(project: Path):
    out = _run(project, [sys.executable, "agent.py"], _env(project))
    assert "RAN delete_file /etc/passwd" in out
    assert "RAN delete_file /tmp/x" in out
    assert not (project / ".hashed" / "ledger.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["hashed run", "HASHED_INSTRUMENT=1", "hashed.instrument()"])
def test_unmodified_script_is_guarded_with_no_code_change(project: Path, launcher: str):
    env = _env(project)
    if launcher == "hashed run":
        command = [sys.executable, "-m", "hashed.cli", "run", "--", sys.executable, "agent.py"]
    elif launcher == "HASHED_INSTRUMENT=1":
        env["HASHED_INSTRUMENT"] = "1"
        command = [sys.executable, "agent.py"]
    else:
        command = [sys.executable, "-c", BOOTSTRAP.format("agent.py")]
    out = _run(project, command, env)
    assert "RAN delete_file" not in out
    assert "RAN transfer_money acct-9 50.0" in out
    assert "MODEL SAW c1 error delete_file denied by policy (rule no-delete): Agents never delete files." in out
    assert "MODEL SAW c2 success sent" in out
    assert "ANSWER all done" in out
    assert "DIRECT error delete_file denied by policy (rule no-delete)" in out
    with _ledger(project) as ledger:
        records = list(ledger.ledger.records())
        decisions = {r.body["call_id"]: r.body for r in records if r.kind == "decision"}
        direct = next(k for k in decisions if k.startswith("tooluse_delete_file_"))
        assert {k: d["effect"] for k, d in decisions.items()} == {"c1": "deny", "c2": "allow", direct: "deny"}
        assert {(d["agent"], d["framework"]) for d in decisions.values()} == {("ops-bot", "strands")}
        [outcome] = [r for r in records if r.kind == "outcome"]
        assert (outcome.body["call"], outcome.body["status"]) == (decisions["c2"]["call"], "ok")
        report = ledger.verify()
        assert report.ok and report.count == 4 and report.unsigned == 0


@pytest.mark.slow
def test_example_runs_as_written(project: Path):
    example = REPO / "examples" / "strands_agent.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHED_", "OTEL_", "AWS_"))}
    env["HASHED_KEY_PASSPHRASE"] = "test passphrase"  # the project's key signs, so the ledger can be read back here
    out = _run(project, [sys.executable, str(example), str(project / ".hashed")], env)
    assert "tool ran: transfer_money(to='acct-9', amount=120.0)" in out
    assert "tool ran: delete_file" not in out
    assert "model saw: delete_file denied by policy (rule never-delete): Agents never delete data." in out
    assert "asked alice: transfer_money {'to': 'acct-7', 'amount': 800}" in out
    assert "tool ran: transfer_money(to='acct-7', amount=800.0)" in out
    assert "ledger verified: 7 records" in out
    with _ledger(project) as ledger:
        records = list(ledger.ledger.records())
        assert ledger.verify().ok
    kinds = [(r.kind, r.body.get("effect") or r.body.get("verdict") or r.body.get("status")) for r in records]
    assert kinds == [
        ("decision", "allow"),
        ("outcome", "ok"),
        ("decision", "deny"),
        ("decision", "pending"),
        ("approval", "approved"),
        ("decision", "allow"),
        ("outcome", "ok"),
    ]


def test_instrument_is_idempotent_and_uninstrument_turns_its_guards_off(guarded, toolbox, kit):
    from strands.agent.agent import Agent

    hashed_strands.instrument(guarded)
    init = Agent.__init__
    hashed_strands.instrument(guarded)
    assert Agent.__init__ is init
    assert init.__wrapped__ is not init  # functools.wraps keeps Strands' signature and docstring
    before = kit.agent(None, toolbox, [("delete_file", {"path": "/a"})])
    hashed_strands.uninstrument()
    after = kit.agent(None, toolbox, [("delete_file", {"path": "/b"})])
    before("delete")
    after("delete")
    assert toolbox.executed == [("delete_file", {"path": "/a"}), ("delete_file", {"path": "/b"})]
    assert kit.records(guarded) == []  # off for the agents it guarded too; the patch stays, inert


def test_instrumented_agents_follow_the_instance_instrument_was_last_given(guarded, toolbox, kit, tmp_path):
    hashed_strands.instrument(guarded)
    agent = kit.agent(None, toolbox, [("read_file", {"path": "/a"})], [("read_file", {"path": "/b"})])
    with make_hashed(tmp_path / "other", policy="version: 1\ndefault: allow\n") as other:
        hashed_strands.instrument(other)
        agent("read twice")
        assert [r.kind for r in kit.records(other)] == ["decision", "outcome", "decision", "outcome"]
    assert kit.records(guarded) == []


def test_an_agent_with_its_own_provider_is_decided_once_and_by_it(guarded, toolbox, kit):
    hashed_strands.instrument(guarded)
    agent = kit.agent(guarded, toolbox, [("read_file", {"path": "/a"})], agent="mine")
    agent("read")
    assert [(r.kind, r.body["agent"]) for r in kit.records(guarded)] == [("decision", "mine"), ("outcome", "mine")]


def test_a_strands_outside_the_supported_range_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(_plugin, "_version", lambda dist: (0, 2))
    found = r"strands-agents has no tool-call hooks hashed-strands supports \(versions 1.29 to <2; found 0.2\)"
    with pytest.raises(FrameworkVersionError, match=found):
        hashed_strands.instrument()
    assert not _plugin.Installed.active


def test_a_bidirectional_agent_is_guarded_too(guarded, toolbox, kit):
    try:
        from strands.bidi import BidiAgent
        from strands.bidi.models.model import BidiModel
    except ImportError:  # before strands-agents 1.55 it was experimental, with an event of its own
        from strands.experimental.bidi.agent.agent import BidiAgent
        from strands.experimental.bidi.models.model import BidiModel

    class Silent(BidiModel):
        """A bidirectional model that is never started: direct tool calls need none."""

        def update_config(self, **kwargs):
            pass

        def get_config(self):
            return {}

        async def structured_output(self, *args, **kwargs):
            raise NotImplementedError
            yield

        async def stream(self, *args, **kwargs):
            raise NotImplementedError
            yield

        async def start(self, *args, **kwargs):
            raise NotImplementedError

        async def stop(self):
            pass

        def receive(self):
            raise NotImplementedError

        async def send(self, content):
            raise NotImplementedError

    hashed_strands.instrument(guarded)
    agent = BidiAgent(model=Silent(), tools=toolbox.tools())
    denied = agent.tool.delete_file(path="/x", record_direct_tool_call=False)
    allowed = agent.tool.read_file(path="/y", record_direct_tool_call=False)
    assert (denied["status"], allowed["status"]) == ("error", "success")
    assert toolbox.executed == [("read_file", {"path": "/y"})]
    assert [(r.kind, r.body["tool"]) for r in kit.records(guarded)] == [
        ("decision", "delete_file"),
        ("decision", "read_file"),
        ("outcome", "read_file"),
    ]
