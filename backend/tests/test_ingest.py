"""POST /v1/logs/batch with records made by the real core: stored, duplicate, refused and quarantined."""

from __future__ import annotations

import copy

import pytest

from hashed import Identity
from hashed.ledger import GENESIS, record_hash


def statuses(response):
    assert response.status_code == 200, response.text
    return [(r["seq"], r["status"], r["code"]) for r in response.json()["results"]]


def quarantine(org, **params):
    response = org.admin.get("/v1/logs/quarantine", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def stored_seqs(org, agent_id):
    response = org.admin.get("/v1/logs", params={"agent": agent_id, "limit": 500})
    assert response.status_code == 200, response.text
    return sorted(item["seq"] for item in response.json()["items"])


def test_ingest_stores_real_records_and_reports_head(org, make_agent):
    agent = make_agent(org, calls=20)
    records = agent.ledger.records()
    response = agent.ship(records)
    assert statuses(response) == [(r["seq"], "stored", None) for r in records]
    assert response.json()["head"] == {"seq": records[-1]["seq"], "hash": records[-1]["hash"]}
    assert stored_seqs(org, agent.id) == [r["seq"] for r in records]
    assert org.admin.get(f"/v1/agents/{agent.id}").json()["head"]["seq"] == records[-1]["seq"]


def test_ingest_continues_the_chain_across_batches(org, make_agent):
    agent = make_agent(org, calls=10)
    first = agent.ledger.records()
    assert {s for _, s, _ in statuses(agent.ship(first))} == {"stored"}
    agent.ledger.activity(10)
    rest = agent.ledger.records(start=len(first) + 1)
    assert rest[0]["prev"] == first[-1]["hash"]
    assert {s for _, s, _ in statuses(agent.ship(rest))} == {"stored"}
    assert stored_seqs(org, agent.id) == list(range(1, len(first) + len(rest) + 1))


def test_ingest_resend_is_acknowledged_as_duplicate_and_stores_nothing_twice(org, make_agent):
    agent = make_agent(org, calls=12)
    records = agent.ledger.records()
    agent.ship(records[:10])
    # A shipper that lost the acknowledgement resends everything: the first ten are duplicates.
    result = statuses(agent.ship(records))
    assert result == [(r["seq"], "duplicate" if r["seq"] <= 10 else "stored", None) for r in records]
    assert statuses(agent.ship(records)) == [(r["seq"], "duplicate", None) for r in records]
    assert stored_seqs(org, agent.id) == [r["seq"] for r in records]
    assert quarantine(org) == []


def test_ingest_forged_signature_is_refused_and_quarantined(org, make_agent):
    agent = make_agent(org, calls=5)
    records = agent.ledger.records()
    forger = Identity.generate()
    forged = copy.deepcopy(records[0])
    forged["sig"] = forger.sign(b"hashed.record.v1\n" + bytes.fromhex(forged["hash"])).hex()
    assert statuses(agent.ship([forged])) == [(1, "refused", "bad_signature")]
    [entry] = quarantine(org)
    assert entry["code"] == "bad_signature" and entry["seq"] == 1 and entry["agent_id"] == agent.id
    assert entry["record"] == forged
    assert stored_seqs(org, agent.id) == []
    # The genuine record still goes in afterwards: nothing was stored in its place.
    assert statuses(agent.ship(records)) == [(r["seq"], "stored", None) for r in records]


def test_ingest_altered_record_is_refused_with_hash_mismatch(org, make_agent):
    agent = make_agent(org, calls=5)
    records = agent.ledger.records()
    altered = copy.deepcopy(records)
    altered[0]["args"]["amount"] = 999_999  # the attacker edits the amount, keeps hash and signature
    assert statuses(agent.ship(altered))[0] == (1, "refused", "hash_mismatch")
    # Re-hashing the altered body does not help: the signature no longer matches.
    rehashed = copy.deepcopy(altered[0])
    rehashed["hash"] = record_hash(rehashed)
    assert statuses(agent.ship([rehashed])) == [(1, "refused", "bad_signature")]
    codes = {entry["code"] for entry in quarantine(org, agent=agent.id)}
    assert {"hash_mismatch", "bad_signature"} <= codes
    assert stored_seqs(org, agent.id) == []


def test_ingest_partial_batch_answers_per_record(org, make_agent):
    agent = make_agent(org, calls=8)
    records = agent.ledger.records()
    batch = copy.deepcopy(records)
    batch[3]["tool"] = "something_else"  # altered in the middle: 1-3 stored, 4 refused, 5.. out of chain
    result = statuses(agent.ship(batch))
    assert result[:3] == [(1, "stored", None), (2, "stored", None), (3, "stored", None)]
    assert result[3] == (4, "refused", "hash_mismatch")
    assert all(status == "refused" and code == "out_of_order" for _, status, code in result[4:])
    assert agent.ship(batch).json()["head"]["seq"] == 3
    # The genuine rest of the chain continues from record 3.
    result = statuses(agent.ship(records[3:]))
    assert {status for _, status, _ in result} == {"stored"}


def test_ingest_forged_signature_in_the_middle_of_a_big_batch_gets_the_sequential_verdict(org, make_agent):
    # Signatures are checked in parallel; the answer is still the one of checking each record in turn.
    agent = make_agent(org, calls=50)
    records = agent.ledger.records()
    batch = copy.deepcopy(records)
    batch[50]["sig"] = Identity.generate().sign(b"hashed.record.v1\n" + bytes.fromhex(batch[50]["hash"])).hex()
    result = statuses(agent.ship(batch))
    assert result[:50] == [(r["seq"], "stored", None) for r in records[:50]]
    assert result[50] == (51, "refused", "bad_signature")
    assert all(code == "out_of_order" for _, _, code in result[51:])
    assert stored_seqs(org, agent.id) == list(range(1, 51))
    assert sorted(e["seq"] for e in quarantine(org, agent=agent.id)) == [r["seq"] for r in records[50:]]
    assert {s for _, s, _ in statuses(agent.ship(records[50:]))} == {"stored"}


@pytest.mark.parametrize("flaw", ["forged", "out_of_order"])
def test_ingest_reused_nonce_is_the_refusal_even_when_the_record_is_also_bad(org, make_agent, flaw):
    # The nonce is checked before the verifier: a record with a used nonce is refused for that first.
    agent = make_agent(org, calls=4)
    records = agent.ledger.records()
    agent.ship(records[:2])
    replay = copy.deepcopy(records[3] if flaw == "out_of_order" else records[2])
    replay["nonce"] = records[0]["nonce"]
    replay["hash"] = record_hash(replay)
    signer = Identity.generate() if flaw == "forged" else agent.ledger.identity
    replay["sig"] = signer.sign(b"hashed.record.v1\n" + bytes.fromhex(replay["hash"])).hex()
    assert statuses(agent.ship([replay])) == [(replay["seq"], "refused", "nonce_reused")]
    assert [e["code"] for e in quarantine(org, agent=agent.id)] == ["nonce_reused"]


def test_ingest_reused_nonce_in_the_middle_of_a_batch_is_refused_and_the_rest_kept_out(org, make_agent):
    agent = make_agent(org, calls=12)
    records = agent.ledger.records()
    agent.ship(records[:4])
    replay = copy.deepcopy(records[10])
    replay["nonce"] = records[1]["nonce"]  # re-signed by the agent's own key: only the nonce is wrong
    replay["hash"] = record_hash(replay)
    replay["sig"] = agent.ledger.identity.sign(b"hashed.record.v1\n" + bytes.fromhex(replay["hash"])).hex()
    batch = [*records[4:10], replay, *records[11:]]
    result = statuses(agent.ship(batch))
    assert result[:6] == [(r["seq"], "stored", None) for r in records[4:10]]
    assert result[6] == (11, "refused", "nonce_reused")
    assert all(code == "out_of_order" for _, _, code in result[7:])
    assert stored_seqs(org, agent.id) == list(range(1, 11))


def test_ingest_out_of_order_record_is_refused_and_gap_reported(org, make_agent):
    agent = make_agent(org, calls=10)
    records = agent.ledger.records()
    agent.ship(records[:3])
    assert statuses(agent.ship([records[6]])) == [(7, "refused", "out_of_order")]
    chain = org.admin.get(f"/v1/agents/{agent.id}/chain").json()
    assert chain["verified_seq"] == 3 and chain["quarantined"] == 1
    assert chain["gaps"] == [{"first": 4, "last": 6}]


def test_ingest_conflicting_record_at_a_stored_seq_is_refused(org, make_agent, make_ledger):
    agent = make_agent(org, calls=3)
    agent.ship(agent.ledger.records())
    # Same key, a different history: seq 1 exists already with another hash (a fork).
    twin = make_ledger("billing-bot", identity=agent.ledger.identity)
    twin.activity(3)
    fork = twin.records()[0]
    assert statuses(agent.ship([fork])) == [(1, "refused", "conflict")]


def test_ingest_reused_nonce_is_refused(org, make_agent):
    agent = make_agent(org, calls=4)
    records = agent.ledger.records()
    agent.ship(records[:2])
    replay = copy.deepcopy(records[2])
    replay["nonce"] = records[0]["nonce"]  # re-signed by the agent's own key: only the nonce is wrong
    replay["hash"] = record_hash(replay)
    replay["sig"] = agent.ledger.identity.sign(b"hashed.record.v1\n" + bytes.fromhex(replay["hash"])).hex()
    assert statuses(agent.ship([replay])) == [(3, "refused", "nonce_reused")]


def test_ingest_from_unregistered_key_is_quarantined_as_unknown_agent(org, make_ledger):
    stranger = make_ledger("stranger")
    stranger.activity(3)
    records = stranger.records()
    with org.agent_client(stranger.identity) as client:
        response = client.post("/v1/logs/batch", json={"records": records})
    assert statuses(response) == [(r["seq"], "refused", "unknown_agent") for r in records]
    entries = quarantine(org, code="unknown_agent")
    assert len(entries) == len(records)
    assert all(e["agent_id"] is None and e["public_key"] == stranger.identity.public_key for e in entries)


def test_ingest_records_of_another_agent_are_refused(org, make_agent):
    alice, bob = make_agent(org, "alice", calls=3), make_agent(org, "bob", calls=3)
    assert statuses(alice.ship(bob.ledger.records()))[0] == (1, "refused", "wrong_key")
    assert stored_seqs(org, alice.id) == [] and stored_seqs(org, bob.id) == []


def test_ingest_malformed_and_unsigned_records_are_refused(org, make_agent):
    agent = make_agent(org, calls=2)
    records = agent.ledger.records()
    unsigned = {**records[0], "sig": None}
    missing = {k: v for k, v in records[0].items() if k != "prev"}
    result = statuses(agent.ship([unsigned, missing, {"hello": "world"}, {**records[0], "seq": "1"}]))
    assert [code for _, _, code in result] == ["unsigned", "malformed", "malformed", "malformed"]
    assert stored_seqs(org, agent.id) == []


def test_ingest_follows_a_key_rotation(org, make_agent):
    agent = make_agent(org, calls=4)
    old_key = agent.ledger.identity.public_key
    agent.ship(agent.ledger.records())
    new = agent.ledger.rotate()
    agent.ledger.activity(4)
    rest = agent.ledger.records(start=agent.ship([]).json()["head"]["seq"] + 1)
    assert rest[0]["kind"] == "key_rotation"
    # The shipper now signs with the new key, which the backend learns from the rotation record itself.
    with org.agent_client(new) as client:
        response = client.post("/v1/logs/batch", json={"records": rest})
    assert {status for _, status, _ in statuses(response)} == {"stored"}
    info = org.admin.get(f"/v1/agents/{agent.id}").json()
    assert info["public_key"] == new.public_key
    chain = org.admin.get(f"/v1/agents/{agent.id}/chain", params={"verify": "true"}).json()
    assert chain["keys"] == [old_key, new.public_key]
    assert chain["verified_seq"] == chain["head"]["seq"] and chain["error"] is None
    # The retired key may no longer sign requests for anything else.
    with org.agent_client(Identity.generate()) as stranger:
        assert stranger.get("/v1/policy").json()["error"]["code"] == "agent_unknown"
    assert agent.client.get("/v1/policy").json()["error"]["code"] == "agent_key_retired"


def test_ingest_rotation_to_a_key_without_proof_is_refused(org, make_agent):
    agent = make_agent(org, calls=2)
    agent.ship(agent.ledger.records())
    impostor = Identity.generate()
    agent.ledger.rotate()
    rotation = agent.ledger.records(start=3)[0]
    # Someone rewrites the rotation to their own key: the signature breaks, and the batch signer is no agent.
    forged = {**rotation, "new_key": impostor.public_key}
    with org.agent_client(impostor) as client:
        result = statuses(client.post("/v1/logs/batch", json={"records": [forged]}))
    assert result[0][1] == "refused"
    assert org.admin.get(f"/v1/agents/{agent.id}").json()["public_key"] == agent.info["public_key"]


def test_ingest_empty_batch_reports_the_head(org, make_agent):
    agent = make_agent(org)
    response = agent.ship([])
    assert response.status_code == 200
    assert response.json() == {"results": [], "head": {"seq": 0, "hash": GENESIS}}


@pytest.mark.parametrize("body", [{"records": "nope"}, {"records": [1, 2]}, {"records": [], "extra": 1}, {}])
def test_ingest_structurally_wrong_body_is_422(org, make_agent, body):
    agent = make_agent(org)
    response = agent.client.post("/v1/logs/batch", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_ingest_needs_an_agent_key_and_signature(org, make_agent):
    agent = make_agent(org, calls=1)
    records = agent.ledger.records()
    assert org.admin.post("/v1/logs/batch", json={"records": records}).json()["error"]["code"] == "forbidden"
    unsigned = org.session.post(
        "/v1/logs/batch", json={"records": records}, headers={"Authorization": f"Bearer {org.agent_key}"}
    )
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "signature_missing"
    assert stored_seqs(org, agent.id) == []
