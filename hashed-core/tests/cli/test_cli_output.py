"""Output for people (issue #16): suggested commands and paths never wrap, even piped at rich's default 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys

HASHED = [sys.executable, "-m", "hashed.cli"]


def _run(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_") and k not in ("COLUMNS", "LINES")}
    env["HASHED_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run([*HASHED, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_long_messages_and_hints_stay_on_one_line_when_piped(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "project"
    deep.mkdir(parents=True)
    init = _run("init", "--agent", "billing-bot", cwd=deep)
    assert init.returncode == 0, init.stderr
    assert (
        "! the key passphrase is in .hashed/key.passphrase (mode 600, git-ignored). In production, keep it in your "
        "secret store as HASHED_KEY_PASSPHRASE and delete the file."
    ) in init.stdout.splitlines()
    assert f"✓ added the secrets to {deep / '.gitignore'}" in init.stdout.splitlines()

    policy = deep / "policy.yaml"
    policy.write_text("version: 1\nrules: [{id: r, tools: [x], effect: maybe}]\n")
    failed = _run("policy", "test", str(policy), "-c", "x", cwd=deep)
    assert failed.returncode == 1
    assert f"→ hashed policy validate {policy}" in failed.stderr.splitlines()

    missing = _run("verify", str(deep / "nothing-here.jsonl"), cwd=tmp_path)
    assert missing.returncode == 2
    assert f"error: {deep / 'nothing-here.jsonl'} does not exist" in missing.stderr.splitlines()
    assert all(len(line) > 80 for line in (str(policy), str(deep / "nothing-here.jsonl")))
