"""Unique ids for call references and record nonces, cheaply.

A guarded call needs three ids, and they must never repeat; they need not be secret (records are signed, and a
record's place in its chain is fixed by `seq` and `prev`). So an id is a random 64-bit prefix drawn from the
kernel once per process, followed by a 64-bit counter: 32 hex characters, unique within the process and, by
the prefix, across processes, for a fraction of a microsecond and no system call (a system call would let the
ledger's thread take the GIL from the caller). A forked child draws a new prefix.
"""

from __future__ import annotations

import itertools
import os

__all__ = ["token16"]


def _reseed() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(8).hex(), itertools.count()


_prefix = ""
_counter = itertools.count()
_reseed()
os.register_at_fork(after_in_child=_reseed)


def token16() -> str:
    """32 lowercase hex characters, never handed out twice.

    Example:
        >>> a, b = token16(), token16()
        >>> len(a), a != b
        (32, True)
    """
    return f"{_prefix}{next(_counter):016x}"
