"""`hashed logs search | tail [-f] | export | refused` against a real backend and real agents' records."""

from __future__ import annotations

import json
import select
import signal

import httpx
import pytest
from rich.console import Console

from hashed import Hashed, Identity
from hashed.cli import _logs_export
from hashed.shipping import BackendClient

pytestmark = pytest.mark.e2e


@pytest.fixture
def shipped(logged_in, make_agent):
    """An agent that shipped 20 guarded calls: 20 decisions (3 denied: two deletes, one transfer over 1000),
    17 outcomes."""
    agent = make_agent("billing-bot")
    agent.register()
    agent.activity(20)
    agent.ship()
    return agent


def test_search_filters_and_pages(logged_in, shipped):
    cli = logged_in
    total = shipped.hashed.ledger.head()[0]
    denied = json.loads(cli("logs", "search", "--agent", "billing-bot", "--decision", "deny", "--json").output)
    assert denied["items"] and all(i["effect"] == "deny" and i["kind"] == "decision" for i in denied["items"])
    assert {i["tool"] for i in denied["items"]} == {"delete_records", "transfer_money"}
    mails = json.loads(cli("logs", "search", "--tool", "send_email", "--kind", "decision", "--json").output)
    assert len(mails["items"]) == 6 and all(i["tool"] == "send_email" for i in mails["items"])

    first = json.loads(cli("logs", "search", "--limit", "5", "--json").output)
    assert len(first["items"]) == 5 and first["next_cursor"]
    assert [i["seq"] for i in first["items"]] == list(range(total, total - 5, -1))
    second = json.loads(cli("logs", "search", "--limit", "5", "--cursor", first["next_cursor"], "--json").output)
    assert [i["seq"] for i in second["items"]] == list(range(total - 5, total - 10, -1))

    found = json.loads(cli("logs", "search", "--q", "acct-13", "--json").output)
    assert found["items"] and all("acct-13" in json.dumps(i["record"]) for i in found["items"])
    assert len(json.loads(cli("logs", "search", "--since", "1h", "--limit", "500", "--json").output)["items"]) == total
    assert json.loads(cli("logs", "search", "--until", "2000-01-01T00:00:00Z", "--json").output)["items"] == []

    table = cli("logs", "search", "--decision", "deny", "--tool", "delete_records", "--limit", "1")
    assert "delete_records" in table.output and "never-delete" in table.output
    assert "Agents never delete data." in table.output
    assert "--cursor" in table.output  # more pages: says how to get the next one
    result = cli("logs", "search", "--since", "yesterday", code=1)
    assert "invalid_request" in result.output and "since" in result.output


def test_tail_prints_the_newest_records_oldest_first(logged_in, shipped):
    cli = logged_in
    total = shipped.hashed.ledger.head()[0]
    lines = cli("logs", "tail", "-n", "3", "--json").stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [total - 2, total - 1, total]
    human = cli("logs", "tail", "-n", "2", "--agent", "billing-bot", "--kind", "decision").output
    assert human.count("billing-bot") == 2 and "decision" in human


def test_tail_follow_shows_a_record_stored_after_it_started(logged_in, shipped):
    cli = logged_in
    process = cli.start("logs", "tail", "-f", "-n", "0", "--tool", "send_email", "--limit", "2", "--json")
    try:
        assert "following new records" in _read_line(process.stderr, 60)
        shipped.transfer_money("acct-x", 5)  # filtered out: another tool
        shipped.send_email("late@example.com", "stored after tail started")
        shipped.ship()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    followed = [json.loads(line) for line in out.splitlines()]
    assert [(e["tool"], e["kind"]) for e in followed] == [("send_email", "decision"), ("send_email", "outcome")]
    assert followed[0]["record"]["args"]["to"] == "late@example.com"


def test_tail_follow_stops_cleanly_on_ctrl_c(logged_in):
    process = logged_in.start("logs", "tail", "-f")
    try:
        assert "following new records" in _read_line(process.stderr, 60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0 and "Traceback" not in err, err


def test_tail_follow_resumes_after_the_backend_restarts(cli, restartable_backend, tmp_path, monkeypatch):
    server = restartable_backend
    with httpx.Client(base_url=server.url, timeout=30) as session:
        signup = {"email": "ops@example.com", "password": "correct horse battery staple", "org_name": "restart"}
        assert session.post("/v1/auth/signup", json=signup).status_code == 201
        admin_key = session.post("/v1/keys", json={"kind": "admin", "name": "ops"}).json()["key"]
        agent_key = session.post("/v1/keys", json={"kind": "agent", "name": "fleet"}).json()["key"]
    monkeypatch.setenv("HASHED_BACKEND_URL", server.url)
    monkeypatch.setenv("HASHED_ADMIN_KEY", admin_key)
    process = cli.start("logs", "tail", "-f", "--limit", "1", "--json")
    try:
        assert "following new records" in _read_line(process.stderr, 60)
        server.stop()
        assert "lost the live feed" in _read_line(process.stderr, 60)
        server.start()
        identity = Identity.generate()
        offline = {"backend_url": ""}  # HASHED_BACKEND_URL is set for the CLI; this agent ships by hand
        with Hashed(tmp_path / "agent", identity=identity, policy="version: 1\ndefault: allow\n", **offline) as hashed:
            hashed.guard("send_email")(lambda to: "sent")("after@example.com")
            hashed.flush()
            records = [r.to_json() for r in hashed.ledger.records()]
        client = BackendClient(server.url, agent_key, lambda: identity, timeout=30)
        try:
            client.register("restart-bot")
            client.send(records)
        finally:
            client.close()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    [entry] = [json.loads(line) for line in out.splitlines()]
    assert entry["agent"] == "restart-bot" and entry["seq"] == 1
    assert "reconnected" in err


def _read_line(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the command printed nothing in time"
    return stream.readline()


def test_export_passes_hashed_verify(logged_in, shipped):
    cli = logged_in
    total = shipped.hashed.ledger.head()[0]
    path = cli.cwd / "billing-bot.jsonl"
    result = cli("logs", "export", "--agent", "billing-bot", "--format", "jsonl", "-o", str(path))
    assert f"exported {total} records" in result.output and f"hashed verify {path}" in result.output
    assert "\x1b" not in result.stderr  # no progress display when stderr is not a terminal
    assert len(path.read_text().splitlines()) == total and not path.with_name(path.name + ".part").exists()
    verified = json.loads(cli("verify", str(path), "--json").output)
    assert verified["ok"] and verified["count"] == total and verified["keys"] == [shipped.identity.public_key]

    piped = cli("logs", "export", "--agent", "billing-bot")
    stdout_copy = cli.cwd / "stdout.jsonl"
    stdout_copy.write_bytes(piped.stdout_bytes)
    assert stdout_copy.read_text() == path.read_text()

    part = cli.cwd / "part.jsonl"
    cli("logs", "export", "--agent", "billing-bot", "--from-seq", "5", "--to-seq", "9", "-o", str(part))
    assert [json.loads(line)["seq"] for line in part.read_text().splitlines()] == [5, 6, 7, 8, 9]
    cli("verify", str(part), code=1)
    assert "5 records verified" in cli("verify", str(part), "--partial").output

    result = cli("logs", "export", "--agent", "billing-bot", "--format", "csv", code=2)
    assert "jsonl" in result.output
    result = cli("logs", "export", "--agent", "nobody", "-o", str(cli.cwd / "x.jsonl"), code=1)
    assert "agent_not_found" in result.output and not (cli.cwd / "x.jsonl").exists()


def test_export_draws_progress_on_a_terminal_and_the_file_still_verifies(logged_in, shipped, monkeypatch):
    cli = logged_in
    monkeypatch.setattr(_logs_export, "_PROGRESS_FROM", 1)
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: self.stderr))  # stderr: a terminal
    path = cli.cwd / "progress.jsonl"
    result = cli("logs", "export", "--agent", "billing-bot", "-o", str(path))
    assert "\x1b[?25l" in result.stderr  # the live progress display ran (it hides the cursor), then went away
    assert cli("verify", str(path), "--json").output.count('"ok": true') == 1


def test_refused_lists_what_the_backend_refused_from_the_local_ledger(cli, org, logged_in, shipped, monkeypatch):
    # A second ledger with the same key and name: its records collide with the chain already stored.
    home = cli.cwd / "clash"
    home.mkdir()
    with Hashed(
        home=home,
        identity=shipped.identity,
        policy="version: 1\ndefault: allow\n",
        agent="billing-bot",
        key_passphrase="p" * 16,
        backend_url=org.url,
        api_key=org.agent_key,
        ship_interval=0.05,
    ) as clash:
        clash.guard("send_email")(lambda to: "sent")("x@example.com")
    monkeypatch.setenv("HASHED_HOME", str(home))
    refused = json.loads(cli("logs", "refused", "--json").output)
    assert [r["seq"] for r in refused] == [1, 2] and {r["code"] for r in refused} == {"conflict"}
    assert all(r["reason"] and r["at_ns"] > 0 for r in refused)
    table = cli("logs", "--refused").output
    assert "conflict" in table and "refused records of" in table
    assert json.loads(cli("logs", "--refused", "--json").output) == refused

    monkeypatch.setenv("HASHED_HOME", str(shipped.home))
    assert "refused no record" in cli("logs", "refused").output
    monkeypatch.setenv("HASHED_HOME", str(cli.cwd / "nowhere"))
    result = cli("logs", "refused", code=3)
    assert "no Hashed project" in result.output and "HASHED_HOME" in result.output
