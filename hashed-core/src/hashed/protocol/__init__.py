"""The contract the agent and the backend both sign and verify (docs/protocol.md is the normative text).

Records: RFC 8785 canonical JSON (`canonical_bytes`), an RFC 6962 leaf hash (`record_hash`), an Ed25519
signature over a domain-separated message (`signing_message`, `verify_signature`), and the chain rules
(`ChainVerifier`, `verify_records`). Requests, approval answers and registrations: `canonical_request`,
`signed_headers`, `approval_message`, `registration_message`. Exports: `read_export`, `write_export`.
Nothing here opens a database or a socket: the backend imports this package, never the agent's ledger or shipper.
"""

from __future__ import annotations

from hashed.protocol._canonical import canonical_bytes, jcs_number
from hashed.protocol._export import read_export, write_export
from hashed.protocol._merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    NodeStore,
    consistency_proof,
    hash_children,
    inclusion_proof,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from hashed.protocol._record import (
    GENESIS,
    PROTOCOL_VERSION,
    SIGNING_CONTEXT,
    leaf_hash,
    record_hash,
    rotation_message,
    signing_message,
    verify_signature,
)
from hashed.protocol._requests import (
    APPROVAL_CONTEXT,
    APPROVAL_FIELDS,
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    NONCE_PATTERN,
    REGISTRATION_CONTEXT,
    REQUEST_CONTEXT,
    SigningIdentity,
    approval_message,
    canonical_request,
    registration_message,
    signed_headers,
    verify_approval,
)
from hashed.protocol._verify import (
    KINDS,
    ChainVerifier,
    Signature,
    VerifyReport,
    verify_records,
    verify_signatures,
    verify_signatures_parallel,
)

__all__ = [
    "APPROVAL_CONTEXT",
    "APPROVAL_FIELDS",
    "EMPTY_ROOT",
    "GENESIS",
    "HEADER_KEY",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "KINDS",
    "NONCE_PATTERN",
    "PROTOCOL_VERSION",
    "REGISTRATION_CONTEXT",
    "REQUEST_CONTEXT",
    "SIGNING_CONTEXT",
    "ChainVerifier",
    "CompactRange",
    "MemoryNodeStore",
    "NodeStore",
    "Signature",
    "SigningIdentity",
    "VerifyReport",
    "approval_message",
    "canonical_bytes",
    "canonical_request",
    "consistency_proof",
    "hash_children",
    "inclusion_proof",
    "jcs_number",
    "leaf_hash",
    "read_export",
    "record_hash",
    "registration_message",
    "root_at",
    "rotation_message",
    "signed_headers",
    "signing_message",
    "verify_approval",
    "verify_consistency",
    "verify_inclusion",
    "verify_records",
    "verify_signature",
    "verify_signatures",
    "verify_signatures_parallel",
    "write_export",
]
