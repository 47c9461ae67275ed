"""docs/quickstart.md, followed to the letter: the real `hashed` commands in subprocesses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hashed_backend.testing import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_the_quickstart_works_as_written(tmp_path):
    doc = (ROOT / "docs" / "quickstart.md").read_text()
    commands = re.findall(r"^(hashed (?:backend serve|login|init)[^#\n]*?)\s*(?:#.*)?$", doc, re.M)
    assert [c.split()[1] for c in commands] == ["backend", "login", "init"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}
    env |= {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HASHED_BACKEND_PORT": str(port),
    }
    hashed = [sys.executable, "-m", "hashed.cli"]
    project = tmp_path / "project"
    project.mkdir()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "backend.log").open("wb")
    server = subprocess.Popen([*hashed, *commands[0].split()[1:]], env=env, stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        login = commands[1].replace("http://127.0.0.1:8400", url).split()[1:]
        assert login[:2] == ["login", "--url"]
        signed_up = subprocess.run(
            [*hashed, *_unquote(login), "--password-stdin"],
            input="a long enough password\n",
            env=env,
            cwd=project,
            check=True,
            text=True,
            capture_output=True,
        )
        done = subprocess.run(
            [*hashed, *commands[2].split()[1:]], env=env, cwd=project, check=True, text=True, capture_output=True
        )
        assert "connected to" in done.stdout and "pushed the starter policy" in done.stdout
        again = subprocess.run(  # a second run, as people do: it keeps the key and says so, no dead end
            [*hashed, *commands[2].split()[1:]], env=env, cwd=project, check=True, text=True, capture_output=True
        )
        assert "kept the agent key" in again.stdout and "connected to" in again.stdout
        shutil.copy(ROOT / "examples" / "quickstart" / "agent.py", project / "agent.py")
        ran = subprocess.run(
            [sys.executable, "agent.py"], env=env, cwd=project, check=True, text=True, capture_output=True
        )
        assert ran.stdout.splitlines() == [
            "sent 50 to acct-9",
            "transfer_money denied by policy (rule small-transfers): amount=5000 is over the limit of 1000",
            "delete_customer denied by policy (rule never-delete): Agents never delete data.",
        ]
        logs = subprocess.run(
            [*hashed, "logs", "search", "--agent", "billing-bot", "--json"],
            env=env,
            cwd=project,
            check=True,
            text=True,
            capture_output=True,
        )
        for step in (signed_up, done, again, ran, logs):
            assert "Traceback" not in step.stderr + step.stdout
        items = json.loads(logs.stdout)["items"]
        assert sorted((i["kind"], i.get("effect")) for i in items) == [
            ("decision", "allow"),
            ("decision", "deny"),
            ("decision", "deny"),
            ("outcome", None),
        ]
    finally:
        server.terminate()
        server.wait(15)
        log.close()


def _unquote(args: list[str]) -> list[str]:
    joined = " ".join(args)
    return [part.strip('"') for part in re.findall(r'"[^"]*"|\S+', joined)]
