from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hashed import Hashed
from hashed.cli.app import app
from hashed.ledger import write_export

runner = CliRunner()


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HASHED_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("HASHED_HOME", raising=False)
    monkeypatch.setenv("HASHED_DISABLE_PLUGIN_AUTOLOAD", "1")
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    result = runner.invoke(app, ["init", "--agent", "billing-bot"])
    assert result.exit_code == 0, result.output
    return tmp_path


def _calls(n_small: int = 1, big: bool = False) -> None:
    with Hashed() as hashed:
        pay = hashed.guard("transfer_money")(lambda to, amount: "sent")
        for _ in range(n_small):
            pay("acct-9", 10)
        if big:
            pay("acct-9", 700)


def test_init_creates_a_private_key_a_policy_and_ignores_secrets(project):
    home = project / ".hashed"
    assert stat.S_IMODE((home / "agent.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "key.passphrase").stat().st_mode) == 0o600
    assert 'agent = "billing-bot"' in (home / "config.toml").read_text()
    gitignore = (project / ".gitignore").read_text()
    assert "*.pyc" in gitignore and ".hashed/agent.key*" in gitignore and ".hashed/key.passphrase" in gitignore
    git = subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert git.returncode == 0
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".hashed/policy.yaml" in status and ".hashed/config.toml" in status
    assert "agent.key" not in status and "key.passphrase" not in status


def test_init_again_keeps_the_key_and_says_nothing_is_missing(project):
    key = (project / ".hashed" / "agent.key").read_bytes()
    result = runner.invoke(app, ["init", "--agent", "other-name"])
    assert result.exit_code == 0, result.output
    assert "kept the agent key" in result.output and "--force makes a new one" in result.output
    assert "config.toml names agent billing-bot: kept" in result.output
    assert "is set up already (agent billing-bot): nothing to add" in result.output
    assert (project / ".hashed" / "agent.key").read_bytes() == key
    forced = runner.invoke(app, ["init", "--force"])
    assert forced.exit_code == 0 and "made a new agent key" in forced.output
    assert (project / ".hashed" / "agent.key").read_bytes() != key


def test_the_starter_policy_validates_and_decides(project):
    assert runner.invoke(app, ["policy", "validate"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "policy",
            "test",
            "--json",
            "-c",
            'transfer_money {"to": "a", "amount": 700}',
            "-c",
            "delete_db",
            "-c",
            "send_email to=bob@example.com",
        ],
    )
    rows = json.loads(result.output)
    assert [(r["effect"], r["rule"]) for r in rows] == [
        ("pending", "small-transfers"),
        ("deny", "never-delete"),
        ("allow", "internal-mail"),
    ]


def test_policy_test_checks_expectations_from_a_file(project):
    calls = project / "calls.yaml"
    calls.write_text("- {tool: delete_db, expect: deny}\n- {tool: read_file, args: {path: x}, expect: deny}\n")
    result = runner.invoke(app, ["policy", "test", "--calls", str(calls), "--json"])
    assert result.exit_code == 1
    assert [(r["effect"], r["ok"]) for r in json.loads(result.output)] == [("deny", True), ("allow", False)]


def test_policy_validate_lists_every_problem_with_lines(project):
    policy = project / ".hashed" / "policy.yaml"
    policy.write_text(
        policy.read_text().replace("max_calls: 10", "max_calls: ten").replace("effect: deny\n", "effect: no\n")
    )
    result = runner.invoke(app, ["policy", "validate", "--json"])
    assert result.exit_code == 1
    issues = json.loads(result.output)["issues"]
    assert [(i["field"], i["line"]) for i in issues] == [("rules[1].rate.max_calls", 22), ("rules[3].effect", 36)]


def test_approvals_can_be_listed_and_approved(project):
    _calls(big=True)
    listed = json.loads(runner.invoke(app, ["approvals", "list", "--json"]).output)
    assert [(r["tool"], r["args"], r["status"]) for r in listed] == [
        ("transfer_money", {"to": "acct-9", "amount": 700}, "pending")
    ]
    request_id = listed[0]["id"]
    result = runner.invoke(app, ["approvals", "approve", request_id, "-m", "ok", "--by", "alice"])
    assert result.exit_code == 0 and "approved" in result.output
    again = runner.invoke(app, ["approvals", "approve", request_id])
    assert again.exit_code == 1 and "already approved" in again.output
    assert json.loads(runner.invoke(app, ["approvals", "list", "--json"]).output) == []
    with Hashed() as hashed:
        assert hashed.guard("transfer_money")(lambda to, amount: "sent")("acct-9", 700) == "sent"


def test_verify_reports_ok_then_names_the_first_tampered_record(project):
    _calls(n_small=3)
    ok = runner.invoke(app, ["verify", "--json"])
    assert ok.exit_code == 0
    assert json.loads(ok.output)["count"] == 6
    with sqlite3.connect(project / ".hashed" / "ledger.db") as conn:
        body = conn.execute("SELECT body FROM records WHERE seq = 3").fetchone()[0]
        conn.execute("UPDATE records SET body = ? WHERE seq = 3", (body.replace(b'"amount":10', b'"amount":99'),))
    bad = runner.invoke(app, ["verify"])
    assert bad.exit_code == 1
    assert "record 3:" in bad.output and "altered" in bad.output


def test_verify_checks_an_export_file(project):
    _calls(n_small=2)
    with Hashed() as hashed:
        export = project / "export.jsonl"
        with export.open("wb") as out:
            write_export(hashed.ledger.records(), out)
    assert runner.invoke(app, ["verify", str(export)]).exit_code == 0
    lines = export.read_text().splitlines()
    export.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    result = runner.invoke(app, ["verify", str(export), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["error"] == {
        "seq": 3,
        "reason": "expected sequence 2: a record is missing, repeated or out of order",
    }


def test_status_shows_identity_policy_and_ledger(project):
    _calls(n_small=1)
    info = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert info["agent"] == "billing-bot"
    assert len(info["public_key"]) == 64
    assert info["chain_head"].startswith("seq 2,")
    assert info["unsigned"] == 0 and info["pending_approvals"] == 0


def test_run_launches_the_program_instrumented(project):
    script = project / "agent.py"
    script.write_text(
        "import os, sys, hashed; print(os.environ['HASHED_INSTRUMENT'], 'hashed._autoload' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-m", "hashed.cli", "run", "--", sys.executable, str(script)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True"]


def test_run_fails_closed_when_hashed_cannot_start(project):
    (project / ".hashed" / "key.passphrase").write_text("wrong\n")
    result = subprocess.run(
        [sys.executable, "-m", "hashed.cli", "run", "--", sys.executable, "-c", "print('ran')"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 78
    assert "ran" not in result.stdout
    assert "wrong passphrase" in result.stderr and "nothing runs unguarded" in result.stderr


def test_missing_project_says_run_init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HASHED_HOME", raising=False)
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 3
    assert "no Hashed project at" in result.output and "→ run hashed init here" in result.output


def test_bad_settings_are_an_error_with_advice_not_a_traceback(project):
    config = project / ".hashed" / "config.toml"
    config.write_text(config.read_text().replace('durability = "durable"', 'durability = "eventual"'))
    result = subprocess.run(
        [sys.executable, "-m", "hashed.cli", "status"], cwd=project, capture_output=True, text=True, check=False
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    [said] = result.stderr.splitlines()
    assert "durability" in said and "'durable', 'immediate' or 'background'" in said
    assert ".hashed/config.toml" in result.stderr
