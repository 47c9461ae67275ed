"""Tampering an operator can do with the agent key, each caught against signed checkpoints and named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from hashed import Hashed, Identity
from hashed.protocol import (
    Checkpoint,
    CompactRange,
    NoteVerifier,
    agent_origin,
    find_split_view,
    open_checkpoint,
    record_hash,
    sign_checkpoint,
    signing_message,
    verify_against_checkpoint,
    verify_records,
)

AGENT = Identity.from_seed(bytes([5]) * 32)
LOG_KEY = NoteVerifier(agent_origin(AGENT.public_key), bytes.fromhex(AGENT.public_key))


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """40 real records from the core, signed by AGENT."""
    home: Path = tmp_path_factory.mktemp("ledger")
    policy = "version: 1\ndefault: allow\nrules: []\n"
    with Hashed(home=home, identity=AGENT, policy=policy, key_passphrase="test passphrase") as hashed:
        transfer = hashed.guard("transfer")(lambda amount: "ok")
        for amount in range(20):
            transfer(amount)
        hashed.flush()
        found = [record.to_json() for record in hashed.ledger.records()]
    assert len(found) == 40
    return found


def checkpoint(records: list[dict[str, Any]], size: int, identity: Identity = AGENT):
    tree = CompactRange()
    tree.extend(bytes.fromhex(r["hash"]) for r in records[:size])
    body = Checkpoint(agent_origin(identity.public_key), size, tree.root())
    key = NoteVerifier(body.origin, bytes.fromhex(identity.public_key))
    return open_checkpoint(sign_checkpoint(body, identity), [key])


def rewrite(records: list[dict[str, Any]], seq: int, **changes: Any) -> list[dict[str, Any]]:
    """What an operator holding the agent key can do: change a record, then re-chain and re-sign all after it."""
    out = copy.deepcopy(records)
    out[seq - 1].update(changes)
    for index in range(seq - 1, len(out)):
        record = out[index]
        if index:
            record["prev"] = out[index - 1]["hash"]
        record["hash"] = record_hash(record)
        record["sig"] = AGENT.sign(signing_message(bytes.fromhex(record["hash"]))).hex()
    return out


def test_the_untouched_history_matches_every_checkpoint(records):
    report = verify_against_checkpoint(records, checkpoint(records, 40), also=[checkpoint(records, 17)])
    assert (report.verdict, report.covered, report.chain.count) == ("ok", 40, 40)
    later = verify_against_checkpoint(records, checkpoint(records, 30))
    assert later.ok and later.covered == 30  # the last 10 records are not covered by a checkpoint yet


def test_a_truncated_tail_is_caught(records):
    cut = records[:25]
    assert verify_records(cut).ok  # the chain alone cannot tell
    report = verify_against_checkpoint(cut, checkpoint(records, 40))
    assert report.verdict == "truncated"
    assert "records 26–40 were cut off" in report.reason


def test_a_rewritten_and_rechained_middle_record_is_caught(records):
    forged = rewrite(records, 12, args={"amount": 1_000_000})
    assert verify_records(forged, key=AGENT.public_key).ok  # re-chained and re-signed: the chain verifies
    report = verify_against_checkpoint(forged, checkpoint(records, 40))
    assert report.verdict == "rewritten"
    assert "the first 40 records are not the history the log signed" in report.reason
    assert verify_against_checkpoint(forged, checkpoint(records, 11)).ok  # before the change, nothing differs


def test_a_fork_shown_to_two_verifiers_is_caught_when_their_checkpoints_meet(records):
    honest, forked = records, rewrite(records, 35, args={"amount": 999})
    seen_by_alice, seen_by_bob = checkpoint(honest, 40), checkpoint(forked, 40)
    assert verify_against_checkpoint(honest, seen_by_alice).ok  # each view, alone, verifies
    assert verify_against_checkpoint(forked, seen_by_bob).ok
    report = verify_against_checkpoint(forked, seen_by_bob, also=[seen_by_alice])
    assert report.verdict == "fork" and "two roots for 40 records" in report.reason
    assert set(report.evidence) == {seen_by_alice.raw, seen_by_bob.raw}
    view = find_split_view(seen_by_alice, seen_by_bob)
    assert view is not None and "two different roots" in view.reason
    earlier = verify_against_checkpoint(forked, seen_by_bob, also=[checkpoint(honest, 37)])
    assert earlier.verdict == "fork" and "it showed two histories" in earlier.reason


def test_a_broken_chain_and_another_log_are_named(records):
    missing = records[:10] + records[11:]
    report = verify_against_checkpoint(missing, checkpoint(records, 40))
    assert report.verdict == "chain_broken" and "out_of_order" in report.reason
    stranger = Identity.from_seed(bytes([6]) * 32)
    other = verify_against_checkpoint(records, checkpoint(records, 40, identity=stranger))
    assert other.verdict == "other_log"
