"""`hashed status` (backend reachability, unshipped records) and `hashed backend serve | migrate`."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from hashed import Hashed
from hashed_backend.testing import free_port

pytestmark = pytest.mark.e2e


def test_status_reports_reachability_and_unshipped_records(cli, org, closed_url, monkeypatch):
    cli("init", "--agent", "status-bot")
    with Hashed(policy="version: 1\ndefault: allow\n") as hashed:  # offline: nothing is shipped
        for _ in range(3):
            hashed.guard("send_email")(lambda to: "sent")("a@example.com")
    monkeypatch.setenv("HASHED_BACKEND_URL", org.url)
    status = json.loads(cli("status", "--json").output)
    assert status["backend"] == org.url and status["backend_reachable"] is True
    assert status["unshipped"] == 6 and status["login"].startswith("none")
    assert "reachable (" in cli("status").output

    monkeypatch.setenv("HASHED_BACKEND_URL", closed_url)
    status = json.loads(cli("status", "--json").output)
    assert status["backend_reachable"] is False and "unreachable" in status["backend_health"]
    assert "unreachable" in cli("status").output

    monkeypatch.delenv("HASHED_BACKEND_URL")
    cli("login", "--url", org.url, "--key", org.admin_key)
    status = json.loads(cli("status", "--json").output)
    assert status["backend"] == "none (offline)" and status["login"].startswith(org.url)
    assert status["login_reachable"] is True


def test_backend_migrate_and_serve_run_the_installed_backend(cli, tmp_path):
    data = tmp_path / "data"
    migrated = cli.process("backend", "migrate", "--data-dir", str(data))
    assert "database at migration" in migrated.stdout and (data / "backend.db").exists()
    assert "serve" in cli.process("backend", "--help").stdout

    port = free_port()
    process = cli.start("backend", "serve", "--port", str(port), "--data-dir", str(data))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "hashed backend serve did not become ready"
            time.sleep(0.1)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_backend_without_the_package_says_what_to_install(cli, monkeypatch):
    monkeypatch.setattr("hashed.cli._backend.entry_points", lambda **_: ())  # no package offers `backend`
    result = cli("backend", "serve", code=3)
    assert "not installed" in result.output and "pip install hashed-backend" in result.output


def test_docs_cli_md_lists_every_option_of_hashed_backend():
    """`hashed backend` hands its arguments to the backend's own command line: its options are documented too."""
    import re
    from pathlib import Path

    import typer.main

    from hashed_backend.cli import app

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, command in typer.main.get_command(app).commands.items():
        usage = "\n".join(  # `hashed backend a|b ...` documents what commands a and b share
            line
            for line in doc.splitlines()
            if line.startswith("    hashed backend ") and name in line.split()[2].split("|")
        )
        flags = [flag for param in command.params if param.name != "help" for flag in param.opts if flag[0] == "-"]
        assert flags and all(re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage) for flag in flags), name
