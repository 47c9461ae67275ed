"""`hashed proof` over an export and checkpoint files, and `hashed witness` as an operator runs it."""

from __future__ import annotations

import base64
import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from hashed import Hashed, Identity
from hashed.cli.app import app
from hashed.ledger import write_export
from hashed.protocol import (
    Checkpoint,
    CompactRange,
    MemoryNodeStore,
    agent_origin,
    consistency_proof,
    format_add_checkpoint,
    open_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verify_inclusion,
)

runner = CliRunner()
AGENT = Identity.from_seed(bytes([3]) * 32)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    home = tmp_path_factory.mktemp("agent")
    with Hashed(home=home, identity=AGENT, policy="version: 1\ndefault: allow\nrules: []\n", key_passphrase="pw") as h:
        send = h.guard("send")(lambda to: "sent")
        for i in range(10):
            send(f"user{i}@example.com")
        h.flush()
        records = list(h.ledger.records())
    path = home / "export.jsonl"
    with path.open("wb") as out:
        write_export(records, out)
    return path, [r.to_json() for r in records]


def _checkpoint_file(tmp_path, records, size, name):
    tree = CompactRange()
    tree.extend(bytes.fromhex(r["hash"]) for r in records[:size])
    path = tmp_path / name
    path.write_text(sign_checkpoint(Checkpoint(agent_origin(AGENT.public_key), size, tree.root()), AGENT))
    return path


def test_proof_inclusion_prints_a_tlog_proof_that_verifies(export, tmp_path):
    path, records = export
    checkpoint = _checkpoint_file(tmp_path, records, 20, "at20.checkpoint")
    result = runner.invoke(app, ["proof", "inclusion", str(path), str(checkpoint), "--seq", "7"])
    assert result.exit_code == 0, result.output
    header, note = result.stdout.split("\n\n", 1)
    lines = header.split("\n")
    assert lines[:2] == ["c2sp.org/tlog-proof@v1", "index 6"]
    vkey = runner.invoke(app, ["proof", "key", str(path)]).stdout.strip()
    signed = open_checkpoint(note, [parse_verifier_key(vkey)])
    proof = [base64.b64decode(line) for line in lines[2:]]
    verify_inclusion(bytes.fromhex(records[6]["hash"]), 6, 20, proof, signed.checkpoint.root)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:15]))
    truncated = runner.invoke(app, ["proof", "inclusion", str(cut), str(checkpoint), "--seq", "3"])
    assert truncated.exit_code == 1 and "the tail was cut off" in " ".join(truncated.output.split())


def test_proof_consistency_between_two_checkpoints_and_a_fork(export, tmp_path):
    path, records = export
    old = _checkpoint_file(tmp_path, records, 8, "at8.checkpoint")
    new = _checkpoint_file(tmp_path, records, 20, "at20.checkpoint")
    result = runner.invoke(app, ["proof", "consistency", str(path), str(old), str(new)])
    assert result.exit_code == 0 and "size 20 extends size 8" in " ".join(result.output.split())
    forked = [dict(r) for r in records]
    forked[3]["hash"] = "00" * 32  # a checkpoint over another history (the export itself is unchanged)
    other = _checkpoint_file(tmp_path, forked, 8, "fork8.checkpoint")
    refused = runner.invoke(app, ["proof", "consistency", str(path), str(other), str(new)])
    assert refused.exit_code == 1 and "does not extend" in " ".join(refused.output.split())
    stranger = runner.invoke(app, ["proof", "consistency", str(path), str(old), str(new), "--key", "ab" * 32])
    assert stranger.exit_code == 1 and "does not verify" in " ".join(stranger.output.split())


def test_witness_init_add_log_serve_and_evidence(export, tmp_path):
    path, records = export
    key, db = tmp_path / "w.key", tmp_path / "w.db"
    created = runner.invoke(app, ["witness", "init", "--name", "witness.test/w1", "--key", str(key)])
    assert created.exit_code == 0 and oct(key.stat().st_mode & 0o777) == "0o600"
    witness_vkey = created.stdout.strip().splitlines()[-1]
    assert parse_verifier_key(witness_vkey).signature_type == 0x04
    assert runner.invoke(app, ["witness", "init", "--name", "x", "--key", str(key)]).exit_code == 3
    log_vkey = runner.invoke(app, ["proof", "key", str(path)]).stdout.strip()
    assert runner.invoke(app, ["witness", "add-log", log_vkey, "--db", str(db)]).exit_code == 0
    serve = ["witness", "serve", "--key", str(key), "--db", str(db), "--port", "0"]
    server = subprocess.Popen([sys.executable, "-m", "hashed.cli", *serve], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split(" at ")[1].split(",")[0]
        store = MemoryNodeStore()
        store.extend(bytes.fromhex(r["hash"]) for r in records)
        origin = agent_origin(AGENT.public_key)
        honest = sign_checkpoint(Checkpoint(origin, 20, store.root()), AGENT)
        with httpx.Client() as client:
            answer = client.post(f"{url}/add-checkpoint", content=format_add_checkpoint(0, [], honest))
            assert answer.status_code == 200 and answer.text.startswith("— witness.test/w1 ")
            grown = MemoryNodeStore()
            grown.extend([*(bytes.fromhex(r["hash"]) for r in records[:20]), bytes(32)])
            extended = sign_checkpoint(Checkpoint(origin, 21, grown.root()), AGENT)
            body = format_add_checkpoint(20, consistency_proof(grown, 20, 21), extended)
            assert client.post(f"{url}/add-checkpoint", content=body).status_code == 200
            again = sign_checkpoint(Checkpoint(origin, 21, bytes(32)), AGENT)
            refused = client.post(f"{url}/add-checkpoint", content=format_add_checkpoint(21, [], again))
            assert refused.status_code == 409
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
    found = runner.invoke(app, ["witness", "evidence", "--db", str(db)])
    assert found.exit_code == 1 and f"split view of {origin}" in found.stdout
