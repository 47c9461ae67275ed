"""The README's demo command runs as advertised, says what it is doing, cleans up, and its closing hints work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end(tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(temporary)},  # piped, 80 columns
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("starting a local backend") < out.index("backend ready at http://127.0.0.1:")
    assert "policy in force: backend (v1)" in out
    assert "sent 400 to acct-9" in out
    assert "amount=5000 is over the limit of 1000" in out
    assert "Agents never delete data." in out
    assert "finance@example.com approved transfer_money" in out and "sent 600 to acct-1" in out
    assert "window limit reached: amount may sum to 1500 per 1d; 1450 used" in out
    assert out.count("✓ 11 records verified (seq 1–11)") == 2  # the agent's ledger and the backend's export
    assert "backend: 11 records, verified up to seq 11, 0 quarantined" in out
    assert list(temporary.iterdir()) == []  # its temporary folder is gone

    hints = [line.removeprefix("  $ ") for line in out.split("try it on your own agent")[1].splitlines()]
    commands = [line for line in hints if line.startswith("/")]
    assert len(commands) == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    for command in commands:  # as printed, one after the other, in a folder of one's own
        done = subprocess.run(["bash", "-c", command], cwd=mine, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    assert "pending" in done.stdout and "small-transfers" in done.stdout
