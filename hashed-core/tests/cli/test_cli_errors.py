"""Issue #16: no traceback, no silent wrong answer, no dead end; one stable exit code per kind of error."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hashed import Hashed
from hashed.cli.app import app

runner = CliRunner()
HASHED = [sys.executable, "-m", "hashed.cli"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("HASHED_KEY_PASSPHRASE", "HASHED_HOME", "HASHED_POLICY", "HASHED_LEDGER", "HASHED_AGENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HASHED_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert runner.invoke(app, ["init", "--agent", "billing-bot"]).exit_code == 0
    return tmp_path


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """A folder with no project."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HASHED_HOME", raising=False)
    return tmp_path


def _one_error(result, code: int) -> str:
    """The command failed with `code`, saying so in one `error:` line (and a `→` hint), without a traceback."""
    assert result.exit_code == code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


# -- 1. policy test: malformed calls are errors, never a guess ----------------------------------------


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ('transfer_money {"amount": 5', "not valid JSON"),
        ("transfer_money {amount: 5}", "at column 17"),
        ('{"amount": 5}', "the tool's name comes first"),
        ("transfer_money amount", "'amount' is not name=value"),
        ("transfer_money [1, 2]", "JSON object"),
        ('transfer_money {"amount": 5, "amount": 5000}', "given twice"),
        ("transfer_money to='acct", "cannot split"),
    ],
)
def test_policy_test_refuses_a_malformed_call_with_exit_2(project, call, says):
    result = runner.invoke(app, ["policy", "test", "--json", "--call", call])
    line = _one_error(result, 2)
    assert says in line and call in line
    assert "→ write it as: transfer_money" in result.output
    assert not result.stdout.strip()  # nothing was evaluated


def test_policy_test_reads_name_value_arguments_as_json_scalars(project):
    result = runner.invoke(app, ["policy", "test", "--json", "-c", "transfer_money to=acct-9 amount=5000"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["args"] == {"to": "acct-9", "amount": 5000}
    assert (row["effect"], row["reason"]) == ("deny", "amount=5000 is over the limit of 1000")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("- {tool: x\n  bad: [", "not valid YAML: line 2"),
        ("- delete_db\n- read_x\n", "call 1 is 'delete_db'"),
        ("tool: delete_db\n", "must hold a list of calls"),
        ("- {args: {}}\n", "call 1 has no tool name"),
        ("- {tool: delete_db, arguments: {table: t}}\n", "unknown field arguments"),
        ("- {tool: delete_db, expect: denied}\n", "use allow, deny or pending"),
        ("- {tool: delete_db, args: [1]}\n", "args must be a mapping"),
    ],
)
def test_policy_test_refuses_a_malformed_calls_file_with_exit_2(project, text, says):
    (project / "calls.yaml").write_text(text)
    line = _one_error(runner.invoke(app, ["policy", "test", "--calls", "calls.yaml"]), 2)
    assert line.startswith("error: calls.yaml: ") and says in line


def test_policy_test_with_a_missing_calls_file(project):
    line = _one_error(runner.invoke(app, ["policy", "test", "--calls", "nothere.yaml"]), 2)
    assert "nothere.yaml does not exist" in line


# -- 2. one line and a stable exit code ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["verify"],
        ["policy", "validate"],
        ["policy", "test", "-c", "read_file"],
        ["run", "--", "python", "-c", "pass"],
        ["agent", "rotate-key"],
        ["logs", "refused"],
    ],
)
def test_every_command_that_needs_a_project_exits_3_without_one(nowhere, args):
    line = _one_error(runner.invoke(app, args), 3)
    assert line == f"error: no Hashed project at {nowhere / '.hashed'}"


def test_a_missing_policy_is_a_setup_error_whose_hint_works(project):
    (project / ".hashed" / "policy.yaml").unlink()
    for args in (["policy", "validate"], ["policy", "test", "-c", "read_file"]):
        result = runner.invoke(app, args)
        assert _one_error(result, 3) == "error: no policy at .hashed/policy.yaml"
        assert "→ run hashed init" in result.output
    key = (project / ".hashed" / "agent.key").read_bytes()
    assert runner.invoke(app, ["init"]).exit_code == 0  # the hint: it adds the policy and keeps the key
    assert (project / ".hashed" / "agent.key").read_bytes() == key
    assert runner.invoke(app, ["policy", "validate"]).exit_code == 0


def test_a_policy_file_named_on_the_command_line_that_is_missing_is_a_usage_error(project):
    assert "nope.yaml does not exist" in _one_error(runner.invoke(app, ["policy", "validate", "nope.yaml"]), 2)
    assert "is a directory" in _one_error(runner.invoke(app, ["policy", "validate", "."]), 2).lower()


def test_an_invalid_policy_fails_the_check_with_exit_1(project):
    policy = project / ".hashed" / "policy.yaml"
    policy.write_text(policy.read_text().replace("effect: deny\n", "effect: no\n"))
    result = runner.invoke(app, ["policy", "test", "-c", "delete_db"])
    assert _one_error(result, 1) == "error: .hashed/policy.yaml is not a valid policy"
    assert "rules[3].effect" in result.output


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x01" * 5000), "file is not a database"),
        (lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.close(), "no such table: records"),
    ],
    ids=["folder", "corrupt-sqlite", "sqlite-not-a-ledger"],
)
def test_verify_on_what_is_not_a_ledger_says_so_in_one_line(project, make, says):
    target = project / "thing.db"
    make(target)
    result = subprocess.run([*HASHED, "verify", "thing.db"], cwd=project, capture_output=True, text=True, check=False)
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr and says in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] != []


def test_usage_errors_are_one_line_with_where_to_look(project):
    result = runner.invoke(app, ["verify", "--bogus"])
    assert _one_error(result, 2) == "error: No such option: --bogus"
    assert "→ see: hashed verify --help" in result.output
    line = _one_error(runner.invoke(app, ["keys", "rotate", "key_1", "--overlap", "soon"]), 2)
    assert "'soon' is not a duration" in line


def test_status_outside_a_project_exits_3_and_inside_one_reports_a_damaged_ledger(nowhere):
    assert subprocess.run([*HASHED, "status"], cwd=nowhere, capture_output=True, check=False).returncode == 3
    assert runner.invoke(app, ["init"]).exit_code == 0
    (nowhere / ".hashed" / "ledger.db").write_bytes(b"SQLite format 3\x00" + b"\x01" * 5000)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert "file is not a database" in json.loads(result.stdout)["ledger_error"]


def test_a_damaged_key_in_a_plain_program_is_one_error_not_two_tracebacks(project):
    key = project / ".hashed" / "agent.key"
    key.write_text('{"format": ')
    key.chmod(0o600)
    result = subprocess.run(
        [sys.executable, "-c", "from hashed import Hashed; Hashed()"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1 and "direct cause" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("hashed.errors.IdentityError: cannot read the agent key at")


def test_under_hashed_run_an_uncaught_hashed_error_is_one_line(project):
    program = "from hashed import Hashed\nHashed(home='elsewhere')\n"
    result = subprocess.run(
        [*HASHED, "run", "--", sys.executable, "-c", program],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"hashed: error: no Hashed project at {project / 'elsewhere'}: run `hashed init` there, or set HASHED_HOME"
    ]
    other = subprocess.run(
        [*HASHED, "run", "--", sys.executable, "-c", "raise KeyError('mine')"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" in other.stderr and "KeyError: 'mine'" in other.stderr  # the program's own errors: as ever


# -- 3. verify: nothing to verify is a warning with its own exit code ---------------------------------


def test_verify_on_an_empty_export_warns_and_exits_4(project):
    (project / "empty.jsonl").write_text("")
    result = runner.invoke(app, ["verify", "empty.jsonl"])
    assert result.exit_code == 4, result.output
    assert "✓" not in result.output
    assert "warning: 0 records verified: empty.jsonl holds no records" in result.output
    assert "backend's copy" in result.output
    report = json.loads(runner.invoke(app, ["verify", "empty.jsonl", "--json"]).stdout)
    assert (report["ok"], report["count"], report["warning"]) == (True, 0, "empty")


def test_verify_before_any_call_warns_and_exits_4(project):
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 4
    assert "no ledger yet at .hashed/ledger.db" in result.output
    as_json = runner.invoke(app, ["verify", "--json"])
    assert as_json.exit_code == 4 and json.loads(as_json.stdout)["warning"] == "empty"


def test_verify_says_what_a_chain_cannot_show(project):
    with Hashed() as hashed:
        hashed.guard("read_file")(lambda path: "text")("a.txt")
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0
    assert "✓ 2 records verified (seq 1–2)" in result.output
    assert "cannot show records cut off after its head (a truncated tail)" in result.output
    assert "hashed agent show AGENT" in result.output


@pytest.mark.parametrize(
    "args",
    [["logs", "export", "--bundle", "out.bundle"], ["proof", "checkpoint"], ["proof", "cosign", "--witness", "x"]],
    ids=["bundle", "checkpoint", "cosign"],
)
def test_commands_that_read_the_ledger_say_whether_it_is_missing_or_not_a_ledger(project, args):
    # Before the agent's first call there is no ledger yet: "is not a ledger" sent people looking for damage.
    result = runner.invoke(app, args)
    assert "no ledger at" in _one_error(result, 2)
    assert "first guarded call" in next(line for line in result.output.splitlines() if line.startswith("→"))
    (project / "notes.db").write_text("not a database")
    named = [*args, "--ledger", "notes.db"] if args[0] == "logs" else [*args[:2], "notes.db", *args[2:]]
    assert "notes.db is not a ledger" in _one_error(runner.invoke(app, named), 2)
