"""Ingest's verdict with signatures checked in parallel equals the verdict of checking each record in turn.

No server: `decide` and the parallel path run on batches of real records from the core, with tampered,
forged, duplicate and forked records in the middle.
"""

from __future__ import annotations

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor

import pytest

from hashed import Identity
from hashed.ledger import GENESIS, record_hash, signing_message
from hashed_backend.services.ingest_decide import AgentChain, decide, decide_verified


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.fixture
def ledger(make_ledger):
    ledger = make_ledger()
    ledger.activity(40)
    return ledger


def forged(record):
    out = copy.deepcopy(record)
    out["sig"] = Identity.generate().sign(signing_message(bytes.fromhex(record["hash"]))).hex()
    return out


def rehashed(record):
    out = copy.deepcopy(record)
    out["tool"] = "something_else"
    out["hash"] = record_hash(out)
    return out


def verdicts(records, chain, stored, pool, used=frozenset()):
    sequential = decide(records, chain, stored, used, defer=False)
    parallel = asyncio.run(decide_verified(records, chain, stored, used, pool, 2))
    assert sequential.pending == [] and parallel.pending == []
    as_tuple = lambda d: (d.results, d.stored, d.refused, d.seq, d.head, d.keys)  # noqa: E731
    assert as_tuple(parallel) == as_tuple(sequential)
    return sequential


def test_a_clean_batch_is_stored_whole(ledger, pool):
    records = ledger.records()
    chain = AgentChain("agt", ledger.identity.public_key, 0, GENESIS)
    decided = verdicts(records, chain, {}, pool)
    assert decided.stored == list(range(len(records))) and decided.head == records[-1]["hash"]


@pytest.mark.parametrize(
    "tampering",
    [
        {30: forged},
        {30: rehashed},
        {0: forged},
        {-1: forged},
        {10: forged, 11: forged, 50: rehashed},
        {25: lambda r: {**r, "sig": None}},
        {25: lambda r: {**r, "seq": "26"}},
    ],
)
def test_a_bad_record_in_the_middle_gets_the_sequential_verdict(ledger, pool, tampering):
    records = ledger.records()
    tampering = {k % len(records): f for k, f in tampering.items()}
    batch = [tampering[i](r) if i in tampering else r for i, r in enumerate(records)]
    chain = AgentChain("agt", ledger.identity.public_key, 0, GENESIS)
    decided = verdicts(batch, chain, {}, pool)
    first = min(tampering)
    assert decided.stored == list(range(first)) and decided.refused[0] == first


def test_forks_after_a_forged_record_take_several_rounds_and_still_match(ledger, make_ledger, pool):
    # Record 21 forged, then genuine alternatives of it (same seq, prev and key) that are forged too, then
    # one that is genuine: each round uncovers the next; the verdict is still the sequential one.
    records = ledger.records()
    alternatives = []
    for n in range(4):
        alt = copy.deepcopy(records[20])
        alt["nonce"] = f"{n:032x}"
        alt["hash"] = record_hash(alt)
        alt["sig"] = ledger.identity.sign(signing_message(bytes.fromhex(alt["hash"]))).hex()
        alternatives.append(forged(alt) if n < 3 else alt)
    batch = [*records[:20], forged(records[20]), *alternatives, *records[21:25]]
    chain = AgentChain("agt", ledger.identity.public_key, 0, GENESIS)
    decided = verdicts(batch, chain, {}, pool)
    codes = [r["code"] for r in decided.results[20:25]]
    assert codes == ["bad_signature"] * 4 + [None]


def test_duplicates_conflicts_and_reused_nonces_get_the_sequential_verdict(ledger, pool):
    records = ledger.records()
    stored = {r["seq"]: r for r in records[:10]}
    chain = AgentChain("agt", ledger.identity.public_key, 10, records[9]["hash"])
    conflict = rehashed(records[4])
    batch = [*records[:5], conflict, *records[10:20], forged(records[20]), *records[21:30]]
    used = frozenset({records[25]["nonce"]})
    decided = verdicts(batch, chain, stored, pool, used)
    assert [r["status"] for r in decided.results[:6]] == ["duplicate"] * 5 + ["refused"]


def test_a_key_rotation_in_the_batch_gets_the_sequential_verdict(ledger, pool):
    shipped = len(ledger.records())
    ledger.rotate()
    ledger.activity(10)
    records = ledger.records()
    rest = records[shipped:]
    assert rest[0]["kind"] == "key_rotation"
    head = records[shipped - 1]
    chain = AgentChain("agt", head["key"], head["seq"], head["hash"])
    decided = verdicts(rest, chain, {}, pool)
    assert decided.keys == [head["key"], rest[-1]["key"]] and decided.refused == []
    decided = verdicts([forged(rest[0]), *rest[1:]], chain, {}, pool)
    assert decided.results[0]["code"] == "bad_signature" and decided.stored == []
