"""The agent's Ed25519 identity: generating, storing encrypted, loading and rotating its key."""

from __future__ import annotations

from hashed.identity._keys import Identity, load_identity, read_public_key, save_identity

__all__ = ["Identity", "load_identity", "read_public_key", "save_identity"]
