"""Agents: registration by challenge, listing, chain status."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hashed_backend.schemas.common import AgentName, Head, Hex64, Hex128, Strict

__all__ = ["AgentOut", "ChainOut", "ChallengeIn", "ChallengeOut", "Gap", "RegisterIn"]


class ChallengeIn(Strict):
    """The agent's name and public key."""

    name: AgentName
    public_key: Hex64


class ChallengeOut(BaseModel):
    """Sign `registration_message(challenge, name, public_key)` with the agent key, then register."""

    id: str
    challenge: str
    expires_at: str | None


class RegisterIn(Strict):
    """Proof of possession: the signature of the challenge."""

    challenge_id: str = Field(max_length=40)
    name: AgentName
    public_key: Hex64
    signature: Hex128


class AgentOut(BaseModel):
    """A registered agent."""

    id: str
    name: str
    public_key: str
    created_at: str | None
    disabled_at: str | None
    head: Head


class Gap(BaseModel):
    """Sequence numbers missing between the verified head and records that arrived ahead of them."""

    first: int
    last: int


class ChainOut(BaseModel):
    """Integrity of one agent's chain as stored."""

    agent_id: str
    name: str
    verified_seq: int = Field(description="Every record from 1 to this one is stored and verified.")
    head: Head
    records: int
    quarantined: int
    gaps: list[Gap]
    keys: list[str] = Field(description="Every key the agent has held, oldest first.")
    reverified: bool = Field(description="True when ?verify=true re-checked every stored record just now.")
    error: str | None = Field(default=None, description="What re-verification found wrong, if anything.")
