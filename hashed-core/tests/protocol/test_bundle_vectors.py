"""docs/protocol.md §8.7: the audit bundle test vector is recomputed here, must appear in the document, and verifies."""

from __future__ import annotations

import io
import json

from hashed.identity import Identity
from hashed.protocol import (
    COSIGNATURE_V1,
    Checkpoint,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    cosign_checkpoint,
    root_at,
    sign_checkpoint,
    verify_bundle,
    write_bundle,
)

from ..conftest import REPO

DOCUMENT = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
VECTORS = json.loads((REPO / "docs" / "protocol-vectors.json").read_text(encoding="utf-8"))["records"]
RECORDS = [{**json.loads(v["canonical"]), "hash": v["hash"], "sig": v["sig"]} for v in VECTORS]  # export form
AGENT = Identity.from_seed(bytes(range(32)))
ROTATED = Identity.from_seed(bytes(range(32, 64)))  # record 3 rotates the agent to this key
WITNESS = Identity.from_seed(bytes(range(64, 96)))
WITNESS_KEY = NoteVerifier("witness.example/w2", bytes.fromhex(WITNESS.public_key), COSIGNATURE_V1)


def _bundle() -> bytes:
    hashes = [bytes.fromhex(r["hash"]) for r in RECORDS]
    store = MemoryNodeStore()
    store.extend(hashes)
    origin = agent_origin(AGENT.public_key)
    two, three = Checkpoint(origin, 2, root_at(store, 2)), Checkpoint(origin, 3, store.root())
    notes = [
        sign_checkpoint(two, AGENT),
        sign_checkpoint(three, ROTATED) + cosign_checkpoint(three, WITNESS_KEY.name, WITNESS, 1767225600).line,
    ]
    out = io.BytesIO()
    write_bundle(out, hashes, AGENT.public_key, notes, RECORDS)
    return out.getvalue()


def test_the_bundle_vector_is_documented_and_verifies():
    bundle = _bundle()
    assert f"```\n{bundle.decode()}```" in DOCUMENT
    assert f"bundle witness verifier key: `{WITNESS_KEY.vkey}`" in DOCUMENT
    report = verify_bundle(io.BytesIO(bundle), key=AGENT.public_key, witnesses=[WITNESS_KEY], min_witnesses=1)
    assert (report.verdict, report.checkpoints, report.covered) == ("ok", 2, 3)
    assert report.cosigned == ("witness.example/w2",)
    assert report.chain.keys == [AGENT.public_key, ROTATED.public_key]  # checkpoint 3 is the rotated key's


def test_the_bundle_vector_with_checkpoint_3_signed_by_the_first_key_is_refused():
    lines = _bundle().decode().splitlines(keepends=True)
    line = json.loads(lines[2])
    body = line["note"][: line["note"].rfind("\n\n") + 1]
    line["note"] = sign_checkpoint(Checkpoint.parse(body), AGENT)  # the rotated-out key, past its rotation
    lines[2] = json.dumps(line, ensure_ascii=False) + "\n"
    report = verify_bundle(io.BytesIO("".join(lines).encode()))
    assert report.verdict == "bad_checkpoint"


def test_every_single_bit_flip_in_the_bundle_vector_is_caught():
    """No byte of a bundle is slack: flipping the low bit of any one of them fails verification (with the witness)."""
    bundle = _bundle()
    passed = []
    for index in range(len(bundle)):
        flipped = bytearray(bundle)
        flipped[index] ^= 0x01
        report = verify_bundle(io.BytesIO(bytes(flipped)), witnesses=[WITNESS_KEY], min_witnesses=1)
        if report.ok:
            passed.append((index, bundle[max(0, index - 20) : index + 20]))
    assert passed == []


def test_a_proof_hash_spelt_with_padding_bits_set_is_not_a_bundle():
    lines = _bundle().decode().splitlines(keepends=True)
    line = json.loads(lines[2])
    last = line["proof"][0]
    line["proof"][0] = last[:-2] + chr(ord(last[-2]) + 1) + "="  # 's' -> 't': the same 32 bytes, another spelling
    lines[2] = json.dumps(line, ensure_ascii=False) + "\n"
    report = verify_bundle(io.BytesIO("".join(lines).encode()))
    assert report.verdict == "not_a_bundle" and "canonical base64" in report.reason
