"""The signed, hash-chained ledger and the public functions that check it.

The backend verifies ingested records with these functions, never with code of its own:
`canonical_bytes`, `record_hash`, `verify_signature`, `ChainVerifier`, `verify_records`, `read_export`, and for
parallel checks `verify_signatures_parallel` (signatures a `ChainVerifier(check_signatures=False)` deferred).
"""

from __future__ import annotations

from hashed.ledger._canonical import canonical_bytes, jcs_number
from hashed.ledger._export import count_records, is_ledger_file, read_export, read_ledger, write_export
from hashed.ledger._record import (
    GENESIS,
    PROTOCOL_VERSION,
    SIGNING_CONTEXT,
    leaf_hash,
    record_hash,
    rotation_message,
    signing_message,
    verify_signature,
)
from hashed.ledger._store import Ledger, Txn
from hashed.ledger._verify import (
    KINDS,
    ChainVerifier,
    Signature,
    VerifyReport,
    verify_records,
    verify_signatures,
    verify_signatures_parallel,
)

__all__ = [
    "GENESIS",
    "KINDS",
    "PROTOCOL_VERSION",
    "SIGNING_CONTEXT",
    "ChainVerifier",
    "Ledger",
    "Signature",
    "Txn",
    "VerifyReport",
    "canonical_bytes",
    "count_records",
    "is_ledger_file",
    "jcs_number",
    "leaf_hash",
    "read_export",
    "read_ledger",
    "record_hash",
    "rotation_message",
    "signing_message",
    "verify_records",
    "verify_signature",
    "verify_signatures",
    "verify_signatures_parallel",
    "write_export",
]
