"""The agent's signed, hash-chained ledger: `Ledger` (one agent's SQLite file) and reading ledger files.

What a record is and how it is checked lives in `hashed.protocol`; the names re-exported below from there
are kept for code written against earlier releases.
"""

from __future__ import annotations

from hashed.ledger._export import count_records, is_ledger_file, read_ledger
from hashed.ledger._store import Ledger
from hashed.protocol import (
    GENESIS,
    KINDS,
    PROTOCOL_VERSION,
    SIGNING_CONTEXT,
    ChainVerifier,
    Signature,
    VerifyReport,
    canonical_bytes,
    jcs_number,
    leaf_hash,
    read_export,
    record_hash,
    rotation_message,
    signing_message,
    verify_records,
    verify_signature,
    verify_signatures,
    verify_signatures_parallel,
    write_export,
)

__all__ = [
    "GENESIS",
    "KINDS",
    "PROTOCOL_VERSION",
    "SIGNING_CONTEXT",
    "ChainVerifier",
    "Ledger",
    "Signature",
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
