r"""What agents and the backend sign, byte for byte (docs/api.md is the normative text).

A signed request carries four headers besides `Authorization: Bearer <agent API key>`:

    X-Hashed-Key        the agent's Ed25519 public key, 64 lowercase hex characters
    X-Hashed-Timestamp  Unix time in whole seconds, decimal ASCII (refused beyond ±300 s of the server clock)
    X-Hashed-Nonce      16 to 64 characters from [A-Za-z0-9_-], never reused by this key
    X-Hashed-Signature  Ed25519 signature of `canonical_request(...)`, 128 lowercase hex characters

The canonical request is six lines joined by "\n" (no trailing newline), UTF-8:

    hashed.request.v1
    <METHOD, upper case>
    <path as sent, then "?" and the query string as sent when there is one>
    <X-Hashed-Timestamp>
    <X-Hashed-Nonce>
    <SHA-256 of the body bytes, lowercase hex (of b"" when there is no body)>

Approval answers are signed by the backend's key over `approval_message(answer)`, registration challenges
by the agent's key over `registration_message(...)`; both are a context line then RFC 8785 JSON, like
ledger records. The agent (hashed.shipping) and the backend (hashed_backend) both use these functions.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

import nacl.exceptions
import nacl.signing

from hashed.protocol._canonical import canonical_bytes

__all__ = [
    "APPROVAL_CONTEXT",
    "APPROVAL_FIELDS",
    "HEADER_KEY",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "NONCE_PATTERN",
    "REGISTRATION_CONTEXT",
    "REQUEST_CONTEXT",
    "approval_message",
    "canonical_request",
    "registration_message",
    "signed_headers",
    "verify_approval",
]

REQUEST_CONTEXT = "hashed.request.v1"
APPROVAL_CONTEXT = b"hashed.approval.v1\n"
REGISTRATION_CONTEXT = b"hashed.register.v1\n"
HEADER_KEY = "X-Hashed-Key"
HEADER_TIMESTAMP = "X-Hashed-Timestamp"
HEADER_NONCE = "X-Hashed-Nonce"
HEADER_SIGNATURE = "X-Hashed-Signature"
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
APPROVAL_FIELDS = ("id", "status", "decided_by", "decided_at", "comment", "args_digest", "agent_key")


class SigningIdentity(Protocol):
    """Anything that can sign as an agent (a `hashed.Identity`)."""

    public_key: str

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of `message`."""
        ...


def canonical_request(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes an agent signs for one request.

    Args:
        method: the HTTP method (upper-cased here).
        target: the path and query exactly as sent on the request line, e.g. `/v1/approvals/apr_1?wait=30`.
        timestamp: the `X-Hashed-Timestamp` header value.
        nonce: the `X-Hashed-Nonce` header value.
        body: the request body bytes (b"" for none).

    Example:
        >>> lines = canonical_request("post", "/v1/logs/batch", "1700000000", "n" * 16, b"{}").decode().splitlines()
        >>> lines[:5]
        ['hashed.request.v1', 'POST', '/v1/logs/batch', '1700000000', 'nnnnnnnnnnnnnnnn']
        >>> lines[5] == hashlib.sha256(b"{}").hexdigest()
        True
    """
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((REQUEST_CONTEXT, method.upper(), target, timestamp, nonce, digest)).encode()


def signed_headers(
    identity: SigningIdentity,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four signature headers for a request, signed with `identity`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce if nonce is not None else os.urandom(16).hex()
    signature = identity.sign(canonical_request(method, target, stamp, nonce, body)).hex()
    return {HEADER_KEY: identity.public_key, HEADER_TIMESTAMP: stamp, HEADER_NONCE: nonce, HEADER_SIGNATURE: signature}


def approval_message(answer: Mapping[str, Any]) -> bytes:
    r"""What the backend key signs for an approval answer: the context line, then the answer's RFC 8785 JSON.

    `answer` has exactly the fields of `APPROVAL_FIELDS`: id, status (approved, denied or expired), decided_by,
    decided_at (nanoseconds since the epoch, decimal string), comment (or null), args_digest, agent_key.

    Example:
        >>> approval_message({"id": "apr_1", "status": "approved"})
        b'hashed.approval.v1\n{"id":"apr_1","status":"approved"}'
    """
    return APPROVAL_CONTEXT + canonical_bytes(dict(answer))


def verify_approval(backend_key: str, answer: Mapping[str, Any], signature: str) -> bool:
    """Whether `signature` is the backend's signature of `answer` (fields exactly `APPROVAL_FIELDS`)."""
    if set(answer) != set(APPROVAL_FIELDS):
        return False
    try:
        nacl.signing.VerifyKey(bytes.fromhex(backend_key)).verify(approval_message(answer), bytes.fromhex(signature))
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def registration_message(challenge: str, name: str, public_key: str) -> bytes:
    r"""What an agent signs to prove it holds `public_key` when it registers under `name`.

    Example:
        >>> registration_message("ab", "billing-bot", "cd")
        b'hashed.register.v1\n{"challenge":"ab","name":"billing-bot","public_key":"cd"}'
    """
    return REGISTRATION_CONTEXT + canonical_bytes({"challenge": challenge, "name": name, "public_key": public_key})
