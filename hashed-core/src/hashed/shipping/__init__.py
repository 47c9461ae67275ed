"""Talking to the backend: the signed-request scheme, the HTTP client, and the background shipper."""

from __future__ import annotations

from hashed.protocol import (  # the signing scheme, kept here for code written against earlier releases
    APPROVAL_CONTEXT,
    APPROVAL_FIELDS,
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    NONCE_PATTERN,
    REGISTRATION_CONTEXT,
    REQUEST_CONTEXT,
    approval_message,
    canonical_request,
    registration_message,
    signed_headers,
    verify_approval,
)
from hashed.shipping._backoff import Backoff, CircuitBreaker
from hashed.shipping._client import BackendClient, PolicyAnswer
from hashed.shipping._policy_cache import PolicyCache
from hashed.shipping._shipper import Shipper

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
    "Backoff",
    "BackendClient",
    "CircuitBreaker",
    "PolicyAnswer",
    "PolicyCache",
    "Shipper",
    "approval_message",
    "canonical_request",
    "registration_message",
    "signed_headers",
    "verify_approval",
]
