"""Checking record signatures in bulk: one after the other, or in chunks on threads.

Ed25519 verification is most of the cost of checking a chain, and PyNaCl releases the GIL while it runs, so the
signatures a `ChainVerifier` deferred (`check_signatures=False`) are checked here on several threads at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import NamedTuple

from hashed.protocol._record import verify_signature

__all__ = ["Signature", "verify_signatures", "verify_signatures_parallel"]

_MIN_CHUNK = 16  # fewer signatures than this per thread cost more in hand-offs than they save


class Signature(NamedTuple):
    """One record signature to check: the key that must have signed, the record hash, the signature (hex).

    Example:
        >>> Signature("ab" * 32, "cd" * 32, "ef" * 64).key[:4]
        'abab'
    """

    key: str
    hash: str
    sig: str


def verify_signatures(signatures: Sequence[Signature]) -> list[bool]:
    """Check signatures one after the other (PyNaCl releases the GIL: run chunks of them on threads).

    Example:
        >>> verify_signatures([Signature("00" * 32, "00" * 32, "00" * 64)])
        [False]
    """
    return [verify_signature(*signature) for signature in signatures]


def _chunks(signatures: Sequence[Signature], threads: int) -> list[Sequence[Signature]]:
    """`signatures` cut into at most `threads` contiguous chunks of at least a few signatures each."""
    count = max(1, min(threads, len(signatures) // _MIN_CHUNK))
    size = -(-len(signatures) // count)
    return [signatures[start : start + size] for start in range(0, len(signatures), size)]


def verify_signatures_parallel(
    signatures: Sequence[Signature], executor: Executor, *, threads: int | None = None
) -> list[bool]:
    """Check signatures in chunks on `executor`'s threads at once; one result per signature, in order.

    Args:
        signatures: typically `ChainVerifier.pending` of a verifier made with `check_signatures=False`.
        executor: a thread pool.
        threads: how many chunks to cut (default: the number of CPUs).
    """
    if not signatures:
        return []
    parts = _chunks(signatures, threads or os.cpu_count() or 2)
    if len(parts) == 1:
        return verify_signatures(parts[0])
    return [ok for part in executor.map(verify_signatures, parts) for ok in part]
