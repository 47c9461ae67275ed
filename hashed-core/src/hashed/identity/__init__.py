"""The agent's Ed25519 identity: generating, storing encrypted and loading its key.

Rotating it is a step of the core (`hashed._rotation`), which asks the ledger to append the record: identity
knows nothing of the ledger.
"""

from __future__ import annotations

from hashed.identity._keys import Identity, load_identity, read_public_key, save_identity

__all__ = ["Identity", "load_identity", "read_public_key", "save_identity"]
