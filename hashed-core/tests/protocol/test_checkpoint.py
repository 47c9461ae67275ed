"""Checkpoints: the C2SP body, signing under the agent's origin, N cosignatures, split views as evidence."""

from __future__ import annotations

import base64

import pytest

from hashed.errors import NoteError
from hashed.identity import Identity
from hashed.protocol import (
    Checkpoint,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    consistency_proof,
    cosign_checkpoint,
    find_split_view,
    format_note,
    leaf_hash,
    open_checkpoint,
    sign_checkpoint,
    verify_cosigned,
)

AGENT = Identity.from_seed(bytes(range(32)))
WITNESSES = [Identity.from_seed(bytes([i]) * 32) for i in (7, 8, 9)]
ROOT = base64.b64encode(bytes(range(32))).decode()


def _log_key() -> NoteVerifier:
    return NoteVerifier(agent_origin(AGENT.public_key), bytes.fromhex(AGENT.public_key))


def _witness_key(i: int) -> NoteVerifier:
    return NoteVerifier(f"witness{i}.example", bytes.fromhex(WITNESSES[i].public_key), 0x04)


def _tree(leaves: list[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    store.extend(leaves)
    return store


def _checkpoint(store: MemoryNodeStore) -> Checkpoint:
    return Checkpoint(agent_origin(AGENT.public_key), store.size, store.root())


def test_the_body_round_trips_and_parses_strictly():
    body = f"hashed.dev/agent/{AGENT.public_key}\n20852163\n{ROOT}\nextension line\n"
    checkpoint = Checkpoint.parse(body)
    assert (checkpoint.size, checkpoint.root, checkpoint.extensions) == (
        20852163,
        bytes(range(32)),
        ("extension line",),
    )
    assert checkpoint.text == body
    for bad in [
        f"o\n020\n{ROOT}\n",  # leading zero
        f"o\n+20\n{ROOT}\n",
        f"o\n2_0\n{ROOT}\n",
        f"o\n٢٠\n{ROOT}\n",  # digits, but not ASCII ones
        f"o\n{2**63}\n{ROOT}\n",
        f"o\n20\n{ROOT[:-2]}=\n",  # 31 bytes
        f"o\n20\n{ROOT}",  # no final newline
        f"o\n20\n{ROOT}\n\n",  # an empty extension line
        f"\n20\n{ROOT}\n",  # no origin
        "o\n20\n",
    ]:
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)


def test_an_agent_checkpoint_opens_with_its_verifier_key_only():
    store = _tree([leaf_hash(b"%d" % i) for i in range(10)])
    note = sign_checkpoint(_checkpoint(store), AGENT)
    assert note.startswith(_checkpoint(store).text + "\n— hashed.dev/agent/")
    signed = open_checkpoint(note, [_log_key()])
    assert signed.checkpoint == _checkpoint(store)
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_checkpoint(note, [_witness_key(0)])
    forged = note.replace(base64.b64encode(store.root()).decode(), ROOT)
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(forged, [_log_key()])


def test_trust_needs_the_log_signature_and_n_witness_cosignatures():
    checkpoint = _checkpoint(_tree([leaf_hash(b"a")]))
    note = sign_checkpoint(checkpoint, AGENT)
    cosigned = note + "".join(
        cosign_checkpoint(checkpoint, f"witness{i}.example", WITNESSES[i], 1_767_225_600 + i).line for i in (0, 1)
    )
    witnesses = [_witness_key(i) for i in range(3)]
    signed = verify_cosigned(cosigned, [_log_key()], witnesses, required=2)
    assert signed.cosigned_by(witnesses) == ["witness0.example", "witness1.example"]
    with pytest.raises(NoteError, match="2 of the 3 witness cosignatures required"):
        verify_cosigned(cosigned, [_log_key()], witnesses, required=3)
    only_witnesses = format_note(checkpoint.text, [cosign_checkpoint(checkpoint, "witness0.example", WITNESSES[0], 1)])
    with pytest.raises(NoteError, match="not signed by the log's key"):
        verify_cosigned(only_witnesses, [_log_key()], witnesses, required=1)
    # a cosignature of another tree head, pasted under this one, fails the whole note
    other = Checkpoint(checkpoint.origin, 2, bytes(32))
    pasted = note + cosign_checkpoint(other, "witness2.example", WITNESSES[2], 5).line
    with pytest.raises(NoteError, match="invalid signature for key witness2.example"):
        verify_cosigned(pasted, [_log_key()], witnesses, required=1)


def test_split_views_are_reported_with_both_checkpoints():
    leaves = [leaf_hash(b"%d" % i) for i in range(20)]
    honest = _tree(leaves)
    forked = _tree([*leaves[:12], leaf_hash(b"rewritten"), *leaves[13:]])
    at_10 = open_checkpoint(
        sign_checkpoint(Checkpoint(_checkpoint(honest).origin, 10, _tree(leaves[:10]).root()), AGENT), [_log_key()]
    )
    honest_20 = open_checkpoint(sign_checkpoint(_checkpoint(honest), AGENT), [_log_key()])
    forked_20 = open_checkpoint(sign_checkpoint(_checkpoint(forked), AGENT), [_log_key()])

    same_size = find_split_view(honest_20, forked_20)
    assert same_size is not None and "two different roots for tree size 20" in same_size.reason
    assert honest_20.raw in same_size.report() and forked_20.raw in same_size.report()

    assert find_split_view(at_10, honest_20, consistency_proof(honest, 10, 20)) is None
    assert find_split_view(honest_20, honest_20) is None
    at_15_forked = Checkpoint(_checkpoint(honest).origin, 15, _tree(leaves[:15]).root())
    evidence = find_split_view(
        open_checkpoint(sign_checkpoint(at_15_forked, AGENT), [_log_key()]),
        forked_20,
        consistency_proof(forked, 15, 20),
    )
    assert evidence is not None and "size 15 is not a prefix of size 20" in evidence.reason
    with pytest.raises(ValueError, match="need a consistency proof"):
        find_split_view(at_10, forked_20)
