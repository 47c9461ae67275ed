"""docs/protocol.md §8.6: every transparency test vector is recomputed here and must appear in the document."""

from __future__ import annotations

import json

from hashed.identity import Identity
from hashed.protocol import (
    COSIGNATURE_V1,
    Checkpoint,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    consistency_proof,
    cosign_checkpoint,
    format_add_checkpoint,
    hash_children,
    inclusion_proof,
    parse_add_checkpoint,
    root_at,
    sign_checkpoint,
    verify_cosigned,
)

from ..conftest import REPO

DOCUMENT = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
RECORDS = json.loads((REPO / "docs" / "protocol-vectors.json").read_text(encoding="utf-8"))["records"]
AGENT = Identity.from_seed(bytes(range(32)))
WITNESS = Identity.from_seed(bytes(range(32, 64)))


def _store() -> MemoryNodeStore:
    store = MemoryNodeStore()
    store.extend(bytes.fromhex(record["hash"]) for record in RECORDS)
    return store


def test_roots_and_proofs_are_documented():
    store = _store()
    a, b, c = (bytes.fromhex(record["hash"]) for record in RECORDS)
    assert store.root() == hash_children(hash_children(a, b), c)  # RFC 6962 by hand, for three leaves
    assert f"root of the first 2 records: `{root_at(store, 2).hex()}`" in DOCUMENT
    assert f"root of the 3 records: `{store.root().hex()}`" in DOCUMENT
    proof = ", ".join(f"`{p.hex()}`" for p in inclusion_proof(store, 1, 3))
    assert f"inclusion proof of record 2 (index 1) in size 3: {proof}" in DOCUMENT
    proof = ", ".join(f"`{p.hex()}`" for p in consistency_proof(store, 2, 3))
    assert f"consistency proof from size 2 to size 3: {proof}" in DOCUMENT


def test_the_checkpoint_cosignature_and_request_are_documented():
    store = _store()
    origin = agent_origin(AGENT.public_key)
    log = NoteVerifier(origin, bytes.fromhex(AGENT.public_key))
    witness = NoteVerifier("witness.example/w1", bytes.fromhex(WITNESS.public_key), COSIGNATURE_V1)
    assert f"agent verifier key: `{log.vkey}`" in DOCUMENT
    assert f"witness verifier key: `{witness.vkey}`" in DOCUMENT
    checkpoint = Checkpoint(origin, 3, store.root())
    note = sign_checkpoint(checkpoint, AGENT) + cosign_checkpoint(checkpoint, witness.name, WITNESS, 1767225600).line
    assert f"```\n{note}```" in DOCUMENT
    assert verify_cosigned(note, [log], [witness], required=1).checkpoint == checkpoint
    request = format_add_checkpoint(2, consistency_proof(store, 2, 3), sign_checkpoint(checkpoint, AGENT))
    assert f"```\n{request.decode()}```" in DOCUMENT
    assert parse_add_checkpoint(request).old == 2
