"""`hashed backend migrate | verify | backup | restore | retention`, as docs/operations.md tells an operator to run
them, on SQLite and PostgreSQL: agents ship to a real backend process, the commands run as processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid

import orjson
import pytest
from _support import POLICY, admin_url, backend_cli, make_agent, pay, wait_for  # this folder (see conftest)

from hashed_backend.testing import LocalBackend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request, tmp_path_factory):
    """A store to which two agents shipped 40 calls each (2 x 80 records), made once per database; the backend
    is stopped again. Returns (kind, where it is, the agents' names, keys and heads)."""
    folder = tmp_path_factory.mktemp(f"seed-{request.param}")
    url = None
    if request.param == "postgresql":
        url = _create_database(admin_url(), "hashed_seed", request.addfinalizer)
    agents = []
    with LocalBackend(folder / "backend", database_url=url) as backend:
        org = backend.bootstrap()
        org.put_policy(POLICY)
        for name in ("billing-bot", "refund-bot"):
            agent = make_agent(folder / name, backend.url, org.create_key("agent", name), name)
            for i in range(40):
                pay(agent)("acct-9", i)
            agent.flush()
            wait_for(lambda a=agent: a.shipper.unshipped() == 0, what="shipping")
            agents.append((name, agent.public_key, agent.ledger.head()))
            agent.close(timeout=5)
    return request.param, url or folder / "backend" / "data", agents


@pytest.fixture
def database(seeded, tmp_path, request):
    """(settings env for the commands, database_url or None) of this test's own copy of the seeded store."""
    kind, where, _ = seeded
    if kind == "postgresql":
        url = _create_database(admin_url(), "hashed_ops", request.addfinalizer, template=where.rpartition("/")[2])
        return {"HASHED_DATABASE_URL": url}, url
    shutil.copytree(where, tmp_path / "data")
    return {"HASHED_BACKEND_DATA_DIR": str(tmp_path / "data")}, None


@pytest.fixture
def shipped(seeded, database):
    return database[0], seeded[2]


def _create_database(base, prefix, finalizer, template=None):
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))

    def drop():
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    finalizer(drop)
    return f"{base.rpartition('/')[0]}/{name}"


def _heads(report):
    return {(c["name"], c["head_seq"], c["head_hash"]) for c in report}


def test_migrate_is_idempotent_and_says_where_it_is(database):
    env, _ = database
    first = backend_cli("migrate", env=env).stdout
    assert first.startswith("database at migration ")
    assert backend_cli("migrate", env=env).stdout == first


def test_verify_reports_every_chain(shipped):
    env, agents = shipped
    report = json.loads(backend_cli("verify", "--json", env=env).stdout)
    assert _heads(report) == {(name, seq, head) for name, _, (seq, head) in agents}
    assert all(c["error"] is None and c["records"] == 80 and c["first_seq"] == 1 for c in report)
    assert "2 agents, 160 records: verified" in backend_cli("verify", env=env).stdout


def test_verify_catches_an_altered_and_a_truncated_store(shipped, database):
    env, url = shipped[0], database[1]
    with _db(env, url) as conn:
        agent = "agent_id IN (SELECT id FROM agents WHERE name = '{}')"
        altered = "replace(raw, '\"amount\":7', '\"amount\":8')"
        conn.exec_driver_sql(f"UPDATE records SET raw = {altered} WHERE seq = 15 AND {agent.format('billing-bot')}")
        conn.exec_driver_sql(f"DELETE FROM records WHERE seq = 80 AND {agent.format('refund-bot')}")
        conn.commit()
    failed = backend_cli("verify", env=env, check=False)
    assert failed.returncode == 1
    assert "billing-bot" in failed.stdout and "record 15" in failed.stdout
    assert "refund-bot" in failed.stdout and "end at seq 79 but the agent's head is seq 80" in failed.stdout


def test_backup_then_restore_into_an_empty_database_verifies_against_the_manifest(shipped, database, tmp_path, request):
    env, agents = shipped
    dump = tmp_path / "backups" / "hashed.dump"
    out = backend_cli("backup", str(dump), env=env).stdout
    assert "2 agents, 160 records" in out
    manifest = json.loads((tmp_path / "backups" / "hashed.dump.manifest.json").read_text())
    assert {(h["seq"], h["hash"]) for h in manifest["agents"].values()} == {head for _, _, head in agents}
    assert oct(dump.stat().st_mode)[-3:] == "600"
    target = _empty_target(database, tmp_path, request)
    restored = backend_cli("restore", str(dump), env=target).stdout
    assert "2 agents, 160 records; every chain verified and every head matches the manifest" in restored
    backend_cli("migrate", env=target)
    assert _heads(json.loads(backend_cli("verify", "--json", env=target).stdout)) == _heads(
        json.loads(backend_cli("verify", "--json", env=env).stdout)
    )


def test_restore_refuses_a_damaged_file_and_a_database_with_data(shipped, tmp_path):
    env, _ = shipped
    dump = tmp_path / "hashed.dump"
    backend_cli("backup", str(dump), env=env)
    again = backend_cli("backup", str(dump), env=env, check=False)
    assert again.returncode == 1 and "exists: choose a new file name" in again.stderr
    refused = backend_cli("restore", str(dump), env=env, check=False)
    assert refused.returncode == 1 and "holds agents already" in refused.stderr
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    damaged = backend_cli("restore", str(dump), "--replace", env=env, check=False)
    assert damaged.returncode == 1 and "does not match its manifest's SHA-256" in damaged.stderr
    assert "160 records: verified" in backend_cli("verify", env=env).stdout  # nothing was touched


def test_retention_archives_verified_files_and_the_rest_still_verifies(shipped, database, tmp_path):
    env, agents = shipped
    url = database[1]
    with _db(env, url) as conn:  # time passes: the first 30 records of each agent were received 40 days ago
        conn.exec_driver_sql(f"UPDATE records SET received_ns = received_ns - {40 * 86400 * 10**9} WHERE seq <= 30")
        conn.commit()
    dry = backend_cli("retention", "--older-than-days", "30", "--archive", str(tmp_path / "a"), "--dry-run", env=env)
    assert "60 records of 2 agents are older than 30 days (nothing changed)" in dry.stdout
    assert not (tmp_path / "a").exists()
    done = backend_cli("retention", "--older-than-days", "30", "--archive", str(tmp_path / "a"), "--yes", env=env)
    assert "archived and deleted 60 records of 2 agents" in done.stdout
    report = json.loads(backend_cli("verify", "--json", env=env).stdout)
    assert all(c["first_seq"] == 31 and c["records"] == 50 and c["error"] is None for c in report)
    assert _heads(report) == {(name, seq, head) for name, _, (seq, head) in agents}
    for name, key, _ in agents:  # each archive verifies offline with the agent's key, and joins the kept chain
        [archive] = [p for p in (tmp_path / "a").rglob("*.jsonl") if name in _agent_name(p)]
        assert archive.name == "000000000001-000000000030.jsonl"
        checked = subprocess.run(
            [sys.executable, "-m", "hashed.cli.app", "verify", str(archive), "--key", key],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    again = backend_cli("retention", "--older-than-days", "30", "--archive", str(tmp_path / "a"), "--yes", env=env)
    assert "0 records of 0 agents" in again.stdout


def _agent_name(archive):
    return orjson.loads(archive.read_text().splitlines()[0])["agent"]


def _db(env, url):
    from hashed_backend.ops.store import connect
    from hashed_backend.settings import BackendSettings

    if url is not None:
        return connect(BackendSettings(database_url=url).sqlalchemy_url)
    return connect(BackendSettings(data_dir=env["HASHED_BACKEND_DATA_DIR"]).sqlalchemy_url)


def _empty_target(database, tmp_path, request):
    if database[1] is None:
        return {"HASHED_BACKEND_DATA_DIR": str(tmp_path / "restored")}
    return {"HASHED_DATABASE_URL": _create_database(admin_url(), "hashed_restore", request.addfinalizer)}


def test_a_wrong_database_gets_one_clear_line_and_nothing_is_created(tmp_path):
    missing = backend_cli("verify", "--data-dir", str(tmp_path / "none"), check=False)
    assert missing.returncode == 3 and "error: no database at" in missing.stderr and "--data-dir" in missing.stderr
    assert not (tmp_path / "none").exists()
    unreachable = backend_cli(
        "backup", str(tmp_path / "b.dump"), "--database-url", "postgresql://x@127.0.0.1:1/x", check=False
    )
    assert unreachable.returncode == 3 and unreachable.stderr.startswith("error: cannot reach the database")
    assert "Traceback" not in unreachable.stderr and not (tmp_path / "b.dump").exists()
