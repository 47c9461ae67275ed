"""The backend's checkpoint signatures, and the checkpoints agents send it (docs/protocol.md §8.2).

The backend signs with its own Ed25519 key (`services/backend_key.py`: made on first start, encrypted at rest,
the same on every replica), under the key name `hashed.dev/backend/<hex public key>`. One key, not a sibling:
its custody, rotation of the secret that encrypts it, and publication (`GET /v1/backend-key`) already exist, and
the messages cannot be confused, since an approval answer is signed under its own context prefix while a
checkpoint's text starts with its origin line.

An agent's checkpoint is taken only if its note verifies under the agent's origin with a key the agent's chain
has held, and if its root is the backend's own tree root at that size. Then the backend adds its signature to
the same note (one note, two signatures) and keeps it. A different root is refused as `forked` and kept as
evidence; a size beyond the backend's tree is refused as `checkpoint_ahead` (send it again once the records
up to it are shipped).
"""

from __future__ import annotations

from typing import Any

import nacl.signing
from sqlalchemy import Connection, insert, select

from hashed.errors import NoteError
from hashed.protocol import (
    Checkpoint,
    NoteVerifier,
    SignedCheckpoint,
    format_note,
    open_checkpoint,
    root_at,
    sign_checkpoint,
    sign_note_text,
)
from hashed_backend.db.models import AgentKey, CheckpointNote, Tree
from hashed_backend.db.session import Database
from hashed_backend.errors import ApiError
from hashed_backend.services.tree import SqlNodeStore

__all__ = ["BACKEND_KEY_PREFIX", "BackendSigner", "receive_checkpoint"]

BACKEND_KEY_PREFIX = "hashed.dev/backend/"
MAX_NOTE = 16_384


class BackendSigner:
    """The backend key as a note signer (`hashed.protocol.SigningIdentity`), with its key name.

    Its name is worked out once: the process signs a checkpoint per ingested batch.
    """

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self.key = key
        self.public_key = key.verify_key.encode().hex()
        self.name = BACKEND_KEY_PREFIX + self.public_key  # the key name its checkpoint signatures carry

    @property
    def verifier(self) -> NoteVerifier:
        """What an auditor passes to check the backend's signature (its `vkey` is the printable form)."""
        return NoteVerifier(self.name, bytes.fromhex(self.public_key))

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of `message`."""
        return self.key.sign(message).signature

    def sign_checkpoint(self, checkpoint: Checkpoint) -> str:
        """The checkpoint as a note signed by the backend key, under its key name."""
        return sign_checkpoint(checkpoint, self, self.name)


def _text(note: str) -> Checkpoint:
    split = note.rfind("\n\n")
    if split < 0:
        raise ApiError(422, "malformed_checkpoint", "note: not a signed note (no blank line before the signatures)")
    try:
        return Checkpoint.parse(note[: split + 1])
    except NoteError as exc:
        raise ApiError(422, "malformed_checkpoint", f"note: {exc}") from None


async def _keep(
    db: Database,
    org_id: str,
    agent_id: str,
    checkpoint: Checkpoint,
    status: str,
    reason: str | None,
    note: str,
    now: int,
) -> None:
    """Store the checkpoint unless the same one is stored already (a resend is harmless)."""
    async with db.write() as conn:
        same = (
            CheckpointNote.agent_id == agent_id,
            CheckpointNote.size == checkpoint.size,
            CheckpointNote.root == checkpoint.root.hex(),
            CheckpointNote.status == status,
        )
        if (await conn.execute(select(CheckpointNote.id).where(*same).limit(1))).first() is not None:
            return
        await conn.execute(
            insert(CheckpointNote).values(
                received_ns=now,
                org_id=org_id,
                agent_id=agent_id,
                size=checkpoint.size,
                root=checkpoint.root.hex(),
                status=status,
                reason=reason,
                note=note,
            )
        )


def _check(conn: Connection, agent_id: str, note: str) -> tuple[SignedCheckpoint, bytes | None, int]:
    """The verified checkpoint, the backend's root at its size (None: beyond the tree) and the tree's size."""
    checkpoint = _text(note)
    tree = conn.execute(select(Tree.origin, Tree.size).where(Tree.agent_id == agent_id)).first()
    if tree is None:
        raise ApiError(409, "checkpoint_ahead", "the backend holds none of this agent's records yet: ship them first")
    if checkpoint.origin != tree.origin:
        theirs = checkpoint.origin[:100]
        raise ApiError(422, "other_log", f"the checkpoint is of {theirs}, this agent's log is {tree.origin}")
    keys = conn.execute(select(AgentKey.public_key).where(AgentKey.agent_id == agent_id)).scalars().all()
    try:
        signed = open_checkpoint(note, [NoteVerifier(tree.origin, bytes.fromhex(key)) for key in keys])
    except NoteError as exc:
        raise ApiError(422, "bad_signature", f"the checkpoint is not signed by a key of this agent: {exc}") from None
    if checkpoint.size > tree.size:
        return signed, None, tree.size
    return signed, root_at(SqlNodeStore(conn, agent_id), checkpoint.size), tree.size


async def receive_checkpoint(
    db: Database, signer: BackendSigner, *, org_id: str, agent_id: str, note: str, now: int
) -> dict[str, Any]:
    """Check an agent's checkpoint against the backend's tree; cosign and keep it, or refuse it (kept if forked).

    Raises:
        ApiError: 422 malformed or not the agent's; 409 `checkpoint_ahead` (retry later) or `forked` (kept).
    """
    async with db.read() as conn:
        signed, root, held = await conn.run_sync(_check, agent_id, note)
    checkpoint = signed.checkpoint
    if root is None:
        raise ApiError(
            409,
            "checkpoint_ahead",
            f"the checkpoint covers {checkpoint.size} records, the backend holds {held}: send it again later",
            details={"held": held},
        )
    if root != checkpoint.root:
        reason = (
            f"at size {checkpoint.size} the backend's root is {root.hex()}, the agent signed {checkpoint.root.hex()}: "
            "the agent's ledger and what it shipped are two different histories"
        )
        await _keep(db, org_id, agent_id, checkpoint, "forked", reason, note, now)
        raise ApiError(409, "forked", reason, details={"size": checkpoint.size, "root": root.hex()})
    mine = sign_note_text(checkpoint.text, signer.name, signer)
    cosigned = format_note(checkpoint.text, [*signed.note.signatures, *signed.note.unverified, mine])
    await _keep(db, org_id, agent_id, checkpoint, "cosigned", None, cosigned, now)
    return {"status": "cosigned", "size": checkpoint.size, "root": root.hex(), "note": cosigned}
