"""Print the test vectors of docs/protocol.md (fixed key, fixed records) as JSON.

    python scripts/protocol_vectors.py > docs/protocol-vectors.json

hashed-core's tests rebuild them and compare with the committed file and the document.
"""

from __future__ import annotations

import json
import sys

from hashed.identity import Identity
from hashed.ledger import GENESIS, canonical_bytes, leaf_hash, rotation_message, signing_message

SEED = bytes(range(32))
NEXT_SEED = bytes(range(32, 64))


def vectors() -> dict[str, object]:
    """Three records of one chain: a decision, its outcome, and a key rotation."""
    key, next_key = Identity.from_seed(SEED), Identity.from_seed(NEXT_SEED)
    bodies = [
        {
            "v": 1,
            "seq": 1,
            "prev": GENESIS,
            "ts": "1767225600000000000",
            "nonce": "00" * 16,
            "kind": "decision",
            "key": key.public_key,
            "agent": "billing-bot",
            "call": "11" * 16,
            "tool": "transfer_money",
            "framework": "python",
            "run_id": None,
            "call_id": None,
            "parent_id": None,
            "args": {"to": "acct-9", "amount": 50.5, "memo": "café ☕"},
            "args_digest": "",
            "effect": "allow",
            "reason": "allowed by rule small-transfers",
            "rule": "small-transfers",
            "policy": "ab" * 32,
            "shadow": False,
            "approval": None,
        },
        {
            "v": 1,
            "seq": 2,
            "prev": "",
            "ts": "1767225600000150000",
            "nonce": "01" * 16,
            "kind": "outcome",
            "key": key.public_key,
            "agent": "billing-bot",
            "call": "11" * 16,
            "tool": "transfer_money",
            "status": "ok",
            "error": None,
            "result_digest": "cd" * 32,
            "duration_ns": 150000,
        },
        {
            "v": 1,
            "seq": 3,
            "prev": "",
            "ts": "1767225601000000000",
            "nonce": "02" * 16,
            "kind": "key_rotation",
            "key": key.public_key,
            "agent": "billing-bot",
            "new_key": next_key.public_key,
            "proof": next_key.sign(rotation_message(key.public_key, next_key.public_key)).hex(),
        },
    ]
    bodies[0]["args_digest"] = __import__("hashlib").sha256(canonical_bytes(bodies[0]["args"])).hexdigest()
    out, prev = [], GENESIS
    for body in bodies:
        body["prev"] = prev
        data = canonical_bytes(body)
        digest = leaf_hash(data)
        sig = key.sign(signing_message(digest))
        out.append({"canonical": data.decode(), "hash": digest.hex(), "sig": sig.hex()})
        prev = digest.hex()
    return {"seed": SEED.hex(), "public_key": key.public_key, "next_seed": NEXT_SEED.hex(), "records": out}


if __name__ == "__main__":
    json.dump(vectors(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
