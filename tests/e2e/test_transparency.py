"""A real agent's shipper sends its signed checkpoints to a real backend, which cosigns them (docs/protocol.md §8.2).

The agent signs a checkpoint when its ledger closes; the next run's shipper sends it once the records it covers
are acknowledged. A checkpoint the backend refuses never holds up the records.
"""

from __future__ import annotations

import base64
import sqlite3
import time
from pathlib import Path

from hashed import Hashed, Identity
from hashed.protocol import (
    Checkpoint,
    NoteVerifier,
    agent_origin,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_checkpoint,
    verify_inclusion,
)

POLICY = """\
version: 1
default: deny
rules:
  - {id: email, tools: [send_email], effect: allow}
"""


def run(home: Path, org, identity: Identity, calls: int) -> tuple[int, Path]:
    """One run of the agent: `calls` guarded calls, shipped by its shipper; the ledger's record count and file."""
    with Hashed(
        home=home,
        policy=POLICY,
        agent="audited-bot",
        key_passphrase="p" * 16,
        backend_url=org.url,
        api_key=org.agent_key,
        ship_interval=0.05,
        identity=identity,
    ) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for i in range(calls):
            send(f"user{i}@example.com")
        hashed.flush()
        return len(list(hashed.ledger.records(1))), Path(hashed.ledger.path)


def wait(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def agent_log(org):
    [agent] = [a for a in org.admin.get("/v1/agents").json() if a["name"] == "audited-bot"]
    return agent["id"], org.admin.get(f"/v1/agents/{agent['id']}/checkpoint").json()


def test_the_shipper_sends_the_signed_checkpoint_and_the_backend_cosigns_it(org, tmp_path):
    identity = Identity.generate()
    home = tmp_path / "agent"
    home.mkdir()
    first, _ = run(home, org, identity, 12)  # closes: its records shipped, then a checkpoint signed over them
    run(home, org, identity, 0)  # the next run's shipper sends that checkpoint
    agent_id, log = agent_log(org)
    assert log["agent"] is None or log["agent"]["size"] == first
    log = wait(lambda: (found := agent_log(org)[1])["agent"] and found)
    backend = parse_verifier_key(org.admin.get("/v1/backend-key").json()["checkpoint_key"])
    mine = NoteVerifier(agent_origin(identity.public_key), bytes.fromhex(identity.public_key))
    opened = open_note(log["agent"]["note"], [mine, backend])
    assert {s.name for s in opened.signatures} == {mine.name, backend.name}
    checkpoint = Checkpoint.parse(opened.text)
    assert checkpoint.size == first == log["agent"]["size"]
    # An auditor holding that note proves any record of the run is in it.
    proof = org.admin.get(f"/v1/agents/{agent_id}/proof/inclusion", params={"seq": 5, "size": first}).json()
    assert proof["checkpoint"] == log["agent"]["note"]
    hashes = [bytes.fromhex(p) for p in proof["proof"]]
    verify_inclusion(bytes.fromhex(proof["leaf"]), 4, first, hashes, checkpoint.root)


def test_a_refused_checkpoint_never_holds_up_the_records(org, tmp_path):
    identity = Identity.generate()
    home = tmp_path / "agent"
    home.mkdir()
    first, ledger = run(home, org, identity, 6)
    # The ledger's checkpoint now names another root: signed by the agent's key, but not what it shipped.
    other = sign_checkpoint(Checkpoint(agent_origin(identity.public_key), first, b"\x07" * 32), identity)
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (other, first)).rowcount == 1
    total, _ = run(home, org, identity, 5)  # records keep flowing while the checkpoint is refused
    agent_id, _ = agent_log(org)
    head = wait(lambda: (a := org.admin.get(f"/v1/agents/{agent_id}").json())["head"]["seq"] >= total and a)
    assert head["head"]["seq"] >= total
    _, log = agent_log(org)
    assert log["agent"] is None
    [kept] = log["forked"]
    assert (kept["note"], kept["size"]) == (other, first)
    with sqlite3.connect(ledger) as conn:  # answered for good: not sent again at every round
        assert conn.execute("SELECT value FROM meta WHERE name = 'checkpoint_sent'").fetchone() == (str(first),)


def test_proof_inclusion_remote_prints_a_checked_tlog_proof(logged_in, org, make_agent):
    agent = make_agent("remote-bot")
    agent.register()
    agent.activity(9)
    agent.ship()
    out = logged_in("proof", "inclusion", "--remote", "remote-bot", "--seq", "4", "--size", "8").output
    head, _, note = out.partition("\n\n")
    lines = head.split("\n")
    assert lines[:2] == ["c2sp.org/tlog-proof@v1", "index 3"]
    backend = parse_verifier_key(org.admin.get("/v1/backend-key").json()["checkpoint_key"])
    signed = open_checkpoint(note, [backend])
    assert signed.checkpoint.size == 8
    record = next(r for r in agent.hashed.ledger.records(4, 4)).to_json()
    hashes = [base64.b64decode(line) for line in lines[2:]]
    verify_inclusion(bytes.fromhex(record["hash"]), 3, 8, hashes, signed.checkpoint.root)
    # Pinning the agent's key asks for its signature too: the agent has sent no checkpoint at size 8.
    pinned = logged_in(
        "proof",
        "inclusion",
        "--remote",
        "remote-bot",
        "--seq",
        "4",
        "--size",
        "8",
        "--key",
        agent.identity.public_key,
        code=1,
    )
    assert "no checkpoint signed by the agent at size 8" in pinned.output
    other = Identity.generate()  # a backend key the backend does not hold: the proof is refused
    stranger = NoteVerifier("hashed.dev/backend/" + other.public_key, bytes.fromhex(other.public_key)).vkey
    refused = logged_in("proof", "inclusion", "--remote", "remote-bot", "--seq", "4", "--backend-key", stranger, code=1)
    assert "does not verify" in refused.output
