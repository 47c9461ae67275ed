"""The backend's Merkle tree per agent, its signed checkpoints, the agents' checkpoints, and the proof API.

Everything is checked the way an auditor would, with `hashed.protocol` alone: roots recomputed from the
records, proofs verified, notes opened with the published keys.
"""

from __future__ import annotations

import base64

import pytest

from hashed import Identity
from hashed.errors import NoteError, ProofError
from hashed.protocol import (
    Checkpoint,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_checkpoint,
    verify_consistency,
    verify_inclusion,
)


def tree_of(records) -> MemoryNodeStore:
    store = MemoryNodeStore()
    store.extend(bytes.fromhex(r["hash"]) for r in records)
    return store


def backend_verifier(org) -> NoteVerifier:
    answer = org.admin.get("/v1/backend-key").json()
    verifier = parse_verifier_key(answer["checkpoint_key"])
    assert verifier.public_key.hex() == answer["public_key"]
    return verifier


def agent_verifier(identity: Identity, origin_key: str) -> NoteVerifier:
    return NoteVerifier(agent_origin(origin_key), bytes.fromhex(identity.public_key))


def ship_all(agent, records, sizes):
    """Ship `records` in batches of the given sizes (cycled), checking each is stored."""
    start, turn = 0, 0
    while start < len(records):
        size = sizes[turn % len(sizes)]
        response = agent.ship(records[start : start + size])
        assert response.status_code == 200, response.text
        assert {r["status"] for r in response.json()["results"]} == {"stored"}
        start, turn = start + size, turn + 1


def checkpoint(org, agent_id, client=None):
    response = (client or org.admin).get(f"/v1/agents/{agent_id}/checkpoint")
    assert response.status_code == 200, response.text
    return response.json()


def test_tree_is_the_rfc6962_root_of_the_records_after_every_batch(org, make_agent):
    agent = make_agent(org, calls=40)
    records = agent.ledger.records()
    backend = backend_verifier(org)
    shipped = 0
    for size in (1, 1, 2, 3, 5, 8, 13, 1, 16, 31, 1):  # sizes that cross every power-of-two boundary
        batch = records[shipped : shipped + size]
        if not batch:
            break
        assert agent.ship(batch).status_code == 200
        shipped += len(batch)
        head = checkpoint(org, agent.id)
        expected = tree_of(records[:shipped]).root()
        assert (head["size"], head["root"]) == (shipped, expected.hex())
        signed = open_checkpoint(head["note"], [backend])
        assert signed.checkpoint == Checkpoint(agent_origin(records[0]["key"]), shipped, expected)
        assert head["origin"] == agent_origin(records[0]["key"])
    assert shipped == len(records)


def test_tree_carries_on_across_restarts(server, org, make_agent):
    agent = make_agent(org, name="restarting-bot", calls=60)
    records = agent.ledger.records()
    for part in range(3):
        chunk = records[part * 20 : (part + 1) * 20]
        assert agent.ship(chunk).status_code == 200
        server.restart()  # same data, same port: the next batch extends the stored tree
        assert checkpoint(org, agent.id)["root"] == tree_of(records[: (part + 1) * 20]).root().hex()


@pytest.fixture
def shipped(org, make_agent):
    agent = make_agent(org, calls=25)
    records = agent.ledger.records()
    ship_all(agent, records, [7, 4, 11])
    return agent, records


def test_inclusion_proof_of_every_record_verifies(org, shipped):
    agent, records = shipped
    backend = backend_verifier(org)
    n = len(records)
    for size in (n, 9):
        for record in records[:size]:
            response = org.admin.get(
                f"/v1/agents/{agent.id}/proof/inclusion", params={"seq": record["seq"], "size": size}
            )
            assert response.status_code == 200, response.text
            proof = response.json()
            signed = open_checkpoint(proof["checkpoint"], [backend])
            assert signed.checkpoint.size == size
            hashes = [bytes.fromhex(p) for p in proof["proof"]]
            verify_inclusion(bytes.fromhex(record["hash"]), record["seq"] - 1, size, hashes, signed.checkpoint.root)
            assert proof["leaf"] == record["hash"]
    # A proof for another record, or a flipped bit, does not verify.
    proof = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"seq": 3}).json()
    hashes = [bytes.fromhex(p) for p in proof["proof"]]
    with pytest.raises(ProofError):
        verify_inclusion(bytes.fromhex(records[3]["hash"]), 2, n, hashes, bytes.fromhex(proof["root"]))
    hashes[0] = bytes([hashes[0][0] ^ 1]) + hashes[0][1:]
    with pytest.raises(ProofError):
        verify_inclusion(bytes.fromhex(records[2]["hash"]), 2, n, hashes, bytes.fromhex(proof["root"]))


def test_inclusion_by_hash_and_as_tlog_proof(org, shipped):
    agent, records = shipped
    record = records[10]
    by_hash = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"hash": record["hash"]}).json()
    assert (by_hash["seq"], by_hash["index"], by_hash["size"]) == (11, 10, len(records))
    text = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"seq": 11, "format": "tlog-proof"}).text
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[:2] == ["c2sp.org/tlog-proof@v1", "index 10"]
    signed = open_checkpoint(note, [backend_verifier(org)])
    hashes = [base64.b64decode(line) for line in lines[2:]]
    verify_inclusion(bytes.fromhex(record["hash"]), 10, signed.checkpoint.size, hashes, signed.checkpoint.root)
    missing = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"hash": "ab" * 32})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "record_not_found")
    beyond = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"seq": len(records) + 1})
    assert (beyond.status_code, beyond.json()["error"]["code"]) == (404, "beyond_tree")


def test_consistency_proofs_verify_between_any_two_sizes(org, shipped):
    agent, records = shipped
    backend = backend_verifier(org)
    n = len(records)
    for old, new in [(1, n), (7, 11), (8, 16), (11, n), (n, n), (3, 22)]:
        response = org.admin.get(f"/v1/agents/{agent.id}/proof/consistency", params={"old": old, "new": new})
        assert response.status_code == 200, response.text
        proof = response.json()
        first = open_checkpoint(proof["old_checkpoint"], [backend]).checkpoint
        second = open_checkpoint(proof["new_checkpoint"], [backend]).checkpoint
        assert (first.size, second.size) == (old, new)
        assert first.root == tree_of(records[:old]).root()
        verify_consistency(old, new, first.root, second.root, [bytes.fromhex(p) for p in proof["proof"]])
    bad = org.admin.get(f"/v1/agents/{agent.id}/proof/consistency", params={"old": 5, "new": 4})
    assert bad.status_code == 422


def agent_note(identity, records, size=None, *, origin_key=None, leaves=None):
    size = len(records) if size is None else size
    store = tree_of(records[:size]) if leaves is None else leaves
    origin = agent_origin(origin_key or records[0]["key"])
    return sign_checkpoint(Checkpoint(origin, size, store.root()), identity)


def test_agent_checkpoint_is_cosigned_into_one_note(org, shipped):
    agent, records = shipped
    backend = backend_verifier(org)
    mine = agent_verifier(agent.ledger.identity, records[0]["key"])
    note = agent_note(agent.ledger.identity, records, 20)
    response = agent.client.post("/v1/logs/checkpoint", json={"note": note})
    assert response.status_code == 200, response.text
    cosigned = response.json()["note"]
    opened = open_note(cosigned, [mine, backend])
    assert {s.name for s in opened.signatures} == {mine.name, backend.name}
    assert cosigned.startswith(note)  # the agent's note, one signature line added
    head = checkpoint(org, agent.id)
    assert (head["agent"]["size"], head["agent"]["status"], head["agent"]["note"]) == (20, "cosigned", cosigned)
    # Proofs at that size come with the note both signed.
    proof = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"seq": 4, "size": 20}).json()
    assert proof["checkpoint"] == cosigned
    # The agent reads its own log's checkpoint too (signed request).
    assert checkpoint(org, agent.id, agent.client)["agent"]["note"] == cosigned


def test_forked_agent_checkpoint_is_refused_and_kept_as_evidence(org, shipped):
    agent, records = shipped
    forged = [dict(r) for r in records]
    forged[4]["hash"] = "00" * 32  # the agent's ledger says something else happened at record 5
    note = agent_note(agent.ledger.identity, records, len(records), leaves=tree_of(forged))
    response = agent.client.post("/v1/logs/checkpoint", json={"note": note})
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "forked"
    head = checkpoint(org, agent.id)
    assert head["agent"] is None
    [kept] = head["forked"]
    assert (kept["note"], kept["status"], kept["size"]) == (note, "forked", len(records))
    assert "two different histories" in kept["reason"]


def test_checkpoint_beyond_the_tree_is_refused_until_the_records_arrive(org, make_agent):
    agent = make_agent(org, calls=12)
    records = agent.ledger.records()
    agent.ship(records[:5])
    note = agent_note(agent.ledger.identity, records)
    ahead = agent.client.post("/v1/logs/checkpoint", json={"note": note})
    assert ahead.status_code == 409
    assert (ahead.json()["error"]["code"], ahead.json()["error"]["details"]) == ("checkpoint_ahead", {"held": 5})
    agent.ship(records[5:])
    assert agent.client.post("/v1/logs/checkpoint", json={"note": note}).status_code == 200


def test_checkpoint_of_another_key_or_log_is_refused(org, shipped):
    agent, records = shipped
    stranger = Identity.generate()
    signed_by_stranger = agent_note(stranger, records)
    response = agent.client.post("/v1/logs/checkpoint", json={"note": signed_by_stranger})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "bad_signature")
    other_log = agent_note(agent.ledger.identity, records, origin_key=stranger.public_key)
    response = agent.client.post("/v1/logs/checkpoint", json={"note": other_log})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "other_log")
    response = agent.client.post("/v1/logs/checkpoint", json={"note": "not a note"})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "malformed_checkpoint")
    assert checkpoint(org, agent.id)["forked"] == []


def test_checkpoint_after_a_key_rotation_is_taken_with_the_new_key(org, make_agent):
    agent = make_agent(org, calls=6)
    first_key = agent.ledger.identity.public_key
    new = agent.ledger.rotate()
    agent.ledger.activity(4)
    records = agent.ledger.records()
    with org.agent_client(new) as client:
        for start in range(0, len(records), 5):
            signer = agent.client if records[start]["key"] == first_key else client
            assert signer.post("/v1/logs/batch", json={"records": records[start : start + 5]}).status_code == 200
        note = agent_note(new, records, origin_key=first_key)  # the log keeps its name; the key ID changes
        response = client.post("/v1/logs/checkpoint", json={"note": note})
    assert response.status_code == 200, response.text
    open_note(response.json()["note"], [agent_verifier(new, first_key), backend_verifier(org)])


def test_proofs_and_checkpoints_stay_in_the_organisation(org, other_org, shipped, make_agent):
    agent, _ = shipped
    for path, params in [
        ("checkpoint", {}),
        ("proof/inclusion", {"seq": 1}),
        ("proof/consistency", {"old": 1}),
    ]:
        for client in (other_org.admin, other_org.session):
            response = client.get(f"/v1/agents/{agent.id}/{path}", params=params)
            assert (response.status_code, response.json()["error"]["code"]) == (404, "agent_not_found"), path
        assert org.session.get(f"/v1/agents/{agent.id}/{path}", params=params).status_code == 200
    neighbour = make_agent(org, name="neighbour-bot", calls=2)
    neighbour.ship(neighbour.ledger.records())
    response = neighbour.client.get(f"/v1/agents/{agent.id}/checkpoint")
    assert response.status_code == 404  # an agent reads its own log only
    with pytest.raises(NoteError):  # and a checkpoint it sends is about its own log
        open_note(agent_note(neighbour.ledger.identity, neighbour.ledger.records()), [backend_verifier(org)])


def test_retention_keeps_the_tree_so_archived_records_stay_provable(server, org, shipped, tmp_path):
    from hashed_backend.ops import retention
    from hashed_backend.ops.store import connect
    from hashed_backend.settings import BackendSettings

    agent, records = shipped
    settings = (
        BackendSettings(database_url=server.database_url)
        if server.database_url
        else BackendSettings(data_dir=server.folder / "data")
    )
    note = agent_note(agent.ledger.identity, records, 20)
    assert agent.client.post("/v1/logs/checkpoint", json={"note": note}).status_code == 200
    with connect(settings.sqlalchemy_url) as conn:  # the first 15 records were received 40 days ago
        conn.exec_driver_sql(
            f"UPDATE records SET received_ns = received_ns - {40 * 86400 * 10**9} "
            f"WHERE agent_id = '{agent.id}' AND seq <= 15"
        )
        conn.commit()
        cuts = [cut for cut in retention.plan(conn, 30) if cut.agent_id == agent.id]
        conn.rollback()
        assert [(c.first, c.last) for c in retention.apply(conn, cuts, tmp_path / "archive")] == [(1, 15)]
    stored = org.admin.get("/v1/logs", params={"agent": agent.id, "limit": 500}).json()["items"]
    assert min(item["seq"] for item in stored) == 16
    for seq in (1, 7, 15):  # archived: still in the tree the agent's cosigned checkpoint commits to
        proof = org.admin.get(f"/v1/agents/{agent.id}/proof/inclusion", params={"seq": seq, "size": 20}).json()
        assert proof["checkpoint"].startswith(note)
        root = Checkpoint.parse(note.partition("\n\n")[0] + "\n").root
        hashes = [bytes.fromhex(p) for p in proof["proof"]]
        verify_inclusion(bytes.fromhex(records[seq - 1]["hash"]), seq - 1, 20, hashes, root)
    consistency = org.admin.get(f"/v1/agents/{agent.id}/proof/consistency", params={"old": 10}).json()
    assert consistency["old_root"] == tree_of(records[:10]).root().hex()
