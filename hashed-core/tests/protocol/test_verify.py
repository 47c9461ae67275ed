"""ChainVerifier with deferred signatures and parallel signature checks: the same verdict as sequential checks."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hashed import Hashed, Identity
from hashed.protocol import (
    ChainVerifier,
    Signature,
    record_hash,
    signing_message,
    verify_records,
    verify_signatures,
    verify_signatures_parallel,
)

POLICY = "version: 1\ndefault: allow\nrules: []\n"


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """120 real records from the core: guarded calls, a key rotation in the middle, more calls."""
    home: Path = tmp_path_factory.mktemp("ledger")
    with Hashed(home=home, identity=Identity.generate(), policy=POLICY, key_passphrase="test passphrase") as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for i in range(30):
            send(f"user{i}@example.com")
        hashed.rotate_key()
        for i in range(30):
            send(f"other{i}@example.com")
        hashed.flush()
        records = [record.to_json() for record in hashed.ledger.records()]
    assert len(records) == 121 and any(r["kind"] == "key_rotation" for r in records)
    return records


def forge_signature(record: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(record)
    forged["sig"] = Identity.generate().sign(signing_message(bytes.fromhex(record["hash"]))).hex()
    return forged


def flip_signature(record: dict[str, Any]) -> dict[str, Any]:
    altered = copy.deepcopy(record)
    altered["sig"] = ("1" if record["sig"][0] == "0" else "0") + record["sig"][1:]
    return altered


def alter_contents(record: dict[str, Any]) -> dict[str, Any]:
    altered = copy.deepcopy(record)
    altered["nonce"] = "0" * len(record["nonce"])
    return altered


def rehash(record: dict[str, Any]) -> dict[str, Any]:
    """Altered contents with a matching hash: only the signature can tell."""
    altered = alter_contents(record)
    altered["hash"] = record_hash(altered)
    return altered


def unsign(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "sig": None}


def outcome(report: Any) -> tuple[Any, ...]:
    error = report.error
    where = None if error is None else (error.sequence, error.code, str(error))
    return (report.count, report.first_seq, report.last_seq, report.head, report.keys, report.unsigned, where)


def test_verify_records_in_parallel_accepts_a_clean_chain_with_a_rotation(chain, pool):
    sequential = verify_records(chain)
    assert sequential.ok and sequential.count == len(chain) and len(sequential.keys) == 2
    assert outcome(verify_records(chain, executor=pool)) == outcome(sequential)


@pytest.mark.parametrize(
    "tampering",
    [
        {10: forge_signature},
        {10: flip_signature},
        {10: alter_contents},
        {10: rehash},
        {10: unsign},
        {60: forge_signature},  # the key_rotation record itself
        {90: rehash},  # signed after the rotation
        {10: rehash, 40: alter_contents},
        {10: alter_contents, 40: forge_signature},
        {5: forge_signature, 6: forge_signature, 100: forge_signature},
    ],
)
def test_verify_records_in_parallel_reports_the_same_first_bad_record_and_code(chain, pool, tampering):
    records = [tampering[i](r) if i in tampering else r for i, r in enumerate(chain)]
    sequential = verify_records(records)
    parallel = verify_records(records, executor=pool)
    assert not sequential.ok and sequential.error.sequence == chain[min(tampering)]["seq"]
    assert outcome(parallel) == outcome(sequential)


def test_a_deferred_signature_is_taken_as_good_and_listed_as_pending(chain):
    forged = forge_signature(chain[3])
    verifier = ChainVerifier(check_signatures=False)
    for record in [*chain[:3], forged]:
        verifier.check(record)
    assert verifier.seq == forged["seq"] and len(verifier.pending) == 4
    assert verifier.pending[3] == Signature(forged["key"], forged["hash"], forged["sig"])
    assert verify_signatures(verifier.pending) == [True, True, True, False]


def test_a_known_bad_signature_is_refused_without_being_checked_again(chain):
    record = chain[0]
    known = {Signature(record["key"], record["hash"], record["sig"]): False}
    verifier = ChainVerifier(signatures=known)
    with pytest.raises(Exception, match="signature does not verify") as caught:
        verifier.check(record)
    assert caught.value.code == "bad_signature" and verifier.seq == 0


def test_verify_signatures_parallel_keeps_the_order(chain, pool):
    signatures = [Signature(r["key"], r["hash"], r["sig"]) for r in chain]
    signatures[77] = signatures[77]._replace(sig=forge_signature(chain[77])["sig"])
    results = verify_signatures_parallel(signatures, pool, threads=2)
    assert results == [i != 77 for i in range(len(chain))]
    assert verify_signatures_parallel([], pool) == []


@pytest.mark.parametrize("bad", [None, 0, 15, 16, 70, 120])
def test_verify_records_in_parallel_across_windows(chain, pool, monkeypatch, bad):
    monkeypatch.setattr("hashed.protocol._verify._WINDOW", 16)
    records = [rehash(r) if i == bad else r for i, r in enumerate(chain)]
    assert outcome(verify_records(records, executor=pool)) == outcome(verify_records(records))
