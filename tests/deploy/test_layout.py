"""deploy/hashed-deploy, end to end, as docs/deployment.md runs it: PostgreSQL, two replicas, nginx with TLS.

Agents ship through the proxy over TLS while a replica is killed (kill -9) and later while every replica is
restarted by an upgrade; nothing is lost, every chain verifies, the backup matches the store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from _support import POLICY, ROOT, admin_url, make_agent, pay, wait_for  # this folder (see conftest)

from hashed_backend.testing import free_port

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "deploy" / "hashed-deploy"


@pytest.fixture
def layout(tmp_path):
    base = admin_url()
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (./dev installs Debian's nginx-light when it runs as root)")
    pg = httpx.URL(base)
    db = f"hashed_deploy_{uuid.uuid4().hex[:10]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HASHED_")},
        "HASHED_DEPLOY_STATE": str(tmp_path / "state"),
        "HASHED_DEPLOY_DB": db,
        "HASHED_DEPLOY_PG_HOST": pg.host,
        "HASHED_DEPLOY_PG_PORT": str(pg.port or 5432),
        "HASHED_DEPLOY_PG_ADMIN": pg.username or "postgres",
        "HASHED_DEPLOY_HASHED": str(Path(sys.executable).parent / "hashed"),
        "HASHED_DEPLOY_PYTHON": sys.executable,
        "HASHED_DEPLOY_LISTEN": "127.0.0.1",
        "HASHED_DEPLOY_HTTPS_PORT": str(free_port()),
        "HASHED_DEPLOY_FIRST_PORT": str(_two_free_ports()),
    }

    def run(*args, check=True):
        result = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"hashed-deploy {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    try:
        yield run, env
    finally:
        run("down", check=False)
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {db}")


def _two_free_ports():
    """A port P such that P and P + 1 are free now (the replicas' ports)."""
    import socket

    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def _pid(env, name):
    return int((Path(env["HASHED_DEPLOY_STATE"]) / "run" / f"{name}.pid").read_text())


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_agents_ship_through_tls_while_a_replica_dies_and_while_all_are_upgraded(layout, tmp_path, monkeypatch):
    run, env = layout
    run("up")
    state = Path(env["HASHED_DEPLOY_STATE"])
    cert = state / "tls" / "cert.pem"
    url = f"https://127.0.0.1:{env['HASHED_DEPLOY_HTTPS_PORT']}"
    assert oct((state / "secrets" / "secret-key").stat().st_mode)[-3:] == "600"
    assert "replica 2: running" in run("status").stdout
    with pytest.raises(httpx.ConnectError):  # TLS only, and only with the certificate trusted
        httpx.get(f"{url}/ready")

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how agents trust a self-signed certificate (the guide)
    tls = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=url, verify=tls, timeout=30) as person:
        person.post(
            "/v1/auth/signup",
            json={"email": "ops@example.com", "password": "correct horse battery staple", "org_name": "Ops"},
            headers={"Origin": url},
        ).raise_for_status()
        assert person.cookies.jar and all(cookie.secure for cookie in person.cookies.jar)  # COOKIE_SECURE
        admin = person.post("/v1/keys", json={"kind": "admin", "name": "ops"}, headers={"Origin": url}).json()["key"]
        admin_headers = {"Authorization": f"Bearer {admin}"}
        person.put("/v1/policies/org", json={"yaml": POLICY}, headers=admin_headers).raise_for_status()
        keys = {
            name: person.post("/v1/keys", json={"kind": "agent", "name": name}, headers=admin_headers).json()["key"]
            for name in ("billing-bot", "refund-bot")
        }

    agents = {name: make_agent(tmp_path / name, url, key, name) for name, key in keys.items()}
    stop = threading.Event()
    answers = {name: [] for name in agents}

    def work(name):
        call = pay(agents[name])
        while not stop.is_set():
            answers[name].append(call("acct-9", 5))
            time.sleep(0.01)

    workers = [threading.Thread(target=work, args=(name,)) for name in agents]
    for worker in workers:
        worker.start()
    try:
        wait_for(
            lambda: all(
                a.shipper.registered and a.shipper.unshipped() < a.ledger.head()[0] > 20 for a in agents.values()
            ),
            what=lambda: f"the first shipments through the proxy ({[a.shipper.last_error for a in agents.values()]})",
        )
        victim = _pid(env, "backend-1")
        os.kill(victim, signal.SIGKILL)  # a replica dies mid-traffic
        wait_for(lambda: not _alive(victim), what="the replica to die")
        heads_at_kill = {name: a.ledger.head()[0] for name, a in agents.items()}
        wait_for(
            lambda: all(a.ledger.head()[0] > heads_at_kill[n] + 20 for n, a in agents.items()),
            what="more calls after the kill",
        )
        wait_for(lambda: all(a.shipper.unshipped() < 50 for a in agents.values()), what="shipping to the survivor")
        upgraded = run("upgrade")  # backup, migrate, restart each replica in turn (the dead one comes back)
        assert "replica 1 ready" in upgraded.stderr and "replica 2 ready" in upgraded.stderr
        assert _pid(env, "backend-1") != victim and _alive(_pid(env, "backend-1"))
        time.sleep(0.5)  # calls go on against the upgraded layout
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert all(set(made) == {"sent"} for made in answers.values())  # no call was refused or failed meanwhile
    made = {name: len(calls) for name, calls in answers.items()}
    for agent in agents.values():
        agent.flush()
        wait_for(lambda a=agent: a.shipper.unshipped() == 0, what="everything shipped")

    with httpx.Client(base_url=url, verify=tls, timeout=60, headers={"Authorization": f"Bearer {admin}"}) as ops:
        for name, agent in agents.items():
            listed = next(a for a in ops.get("/v1/agents").json() if a["name"] == name)
            chain = ops.get(f"/v1/agents/{listed['id']}/chain", params={"verify": "true"}).json()
            head_seq, head_hash = agent.ledger.head()
            assert head_seq == 2 * made[name]  # a decision and an outcome per call, every one in the ledger
            assert (chain["records"], chain["verified_seq"], chain["head"]["hash"]) == (head_seq, head_seq, head_hash)
            assert chain["error"] is None and chain["quarantined"] == 0
        for agent in agents.values():
            agent.close(timeout=10)

    exported = subprocess.run([str(SCRIPT), "env"], env=env, capture_output=True, text=True, check=True).stdout
    verified = subprocess.run(
        ["bash", "-c", f"{exported}\n{env['HASHED_DEPLOY_HASHED']} backend verify --json"],
        env={k: v for k, v in env.items() if not k.startswith("HASHED_")} | {"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    assert {c["name"]: c["head_seq"] for c in json.loads(verified.stdout)} == {name: 2 * made[name] for name in agents}
    [backup] = sorted((state / "backups").glob("*.dump"))  # the upgrade's own backup, with its manifest
    assert json.loads(Path(f"{backup}.manifest.json").read_text())["database"] == "postgresql"

    pids = [_pid(env, name) for name in ("backend-1", "backend-2", "nginx")]
    run("down")
    assert "replica 1: stopped" in run("status", check=False).stdout
    assert not any(_alive(pid) for pid in pids)
