"""The README's demo command runs as advertised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "policy in force: backend (v1)" in out
    assert "sent 400 to acct-9" in out
    assert "amount=5000 is over the limit of 1000" in out
    assert "Agents never delete data." in out
    assert "finance@example.com approved transfer_money" in out and "sent 600 to acct-1" in out
    assert "window limit reached: amount may sum to 1500 per 1d; 1450 used" in out
    assert out.count("✓ 11 records verified (seq 1–11)") == 2  # the agent's ledger and the backend's export
    assert "backend: 11 records, verified up to seq 11, 0 quarantined" in out
