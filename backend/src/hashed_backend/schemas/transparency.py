"""Transparency: checkpoints and Merkle proofs of an agent's log (docs/api.md, "Transparency")."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hashed_backend.schemas.common import Strict

__all__ = ["AgentCheckpoint", "CheckpointIn", "CheckpointOut", "ConsistencyOut", "InclusionOut", "ReceivedOut"]


class CheckpointIn(Strict):
    """A checkpoint the agent signed (a C2SP signed note), sent once its records up to its size are shipped."""

    note: str = Field(max_length=16_384, description="The signed note, as `hashed proof checkpoint` prints it.")


class ReceivedOut(BaseModel):
    """The agent's checkpoint matched the backend's tree: the same note with the backend's signature added."""

    status: str = Field(description="`cosigned`.")
    size: int
    root: str = Field(description="Root hash, hex.")
    note: str = Field(description="The note with the agent's and the backend's signatures.")


class AgentCheckpoint(BaseModel):
    """A checkpoint the agent sent: cosigned, or refused as `forked` and kept as evidence."""

    size: int
    root: str
    status: str
    reason: str | None
    note: str
    received_at: str | None


class CheckpointOut(BaseModel):
    """An agent's log as the backend holds it: its latest signed checkpoint, and the latest the agent sent."""

    origin: str = Field(description="The log's name: `hashed.dev/agent/<hex key of record 1>`.")
    size: int = Field(description="Records in the backend's tree (its head seq).")
    root: str = Field(description="Root hash at `size`, hex.")
    note: str | None = Field(description="The backend's signed checkpoint at `size` (None before the first record).")
    backend_key: str = Field(description="The backend's note verifier key (`name+id+key`).")
    agent: AgentCheckpoint | None = Field(description="The latest checkpoint the agent signed, cosigned.")
    forked: list[AgentCheckpoint] = Field(description="Agent checkpoints refused as `forked` (evidence), newest first.")


class InclusionOut(BaseModel):
    """Record `seq` is leaf `index` of the tree of `size` leaves whose root the checkpoint signs."""

    seq: int
    index: int
    size: int
    leaf: str = Field(description="The record's hash (its leaf hash), hex.")
    root: str
    proof: list[str] = Field(description="RFC 6962 PATH, from the leaf up, hex.")
    checkpoint: str = Field(description="A signed checkpoint at `size`: the agent's, cosigned, when it sent one.")
    tlog_proof: str = Field(description="The same as a c2sp.org/tlog-proof@v1 text (what `hashed proof` prints).")


class ConsistencyOut(BaseModel):
    """The tree at `old` is a prefix of the tree at `new`."""

    old: int
    new: int
    old_root: str
    new_root: str
    proof: list[str] = Field(description="RFC 6962 PROOF(old, D[new]), hex.")
    old_checkpoint: str
    new_checkpoint: str
