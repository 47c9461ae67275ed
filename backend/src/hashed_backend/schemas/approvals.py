"""Approval requests and their signed answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from hashed_backend.schemas.common import Hex64, Strict

__all__ = ["Answer", "ApprovalIn", "ApprovalOut", "ApprovalPage", "BackendKeyOut", "DecisionIn"]


class ApprovalIn(Strict):
    """A pending call that needs a person."""

    id: Annotated[
        str | None,
        Field(
            pattern=r"^apr_[0-9a-f]{24}$",
            description="The agent's own id for the request (kept, so a person sees one id everywhere); "
            "else the backend makes one.",
        ),
    ] = None
    call: Annotated[str, Field(min_length=1, max_length=200, description="The decision record's `call` ref.")]
    tool: Annotated[str, Field(min_length=1, max_length=200)]
    args: dict[str, Any] = Field(default_factory=dict, description="The arguments as recorded (after redaction).")
    args_digest: Hex64
    rule: Annotated[str | None, Field(max_length=200)] = None
    reason: Annotated[str, Field(max_length=2000)] = ""
    timeout: Annotated[float | None, Field(gt=0, description="Seconds until the request expires.")] = None


class DecisionIn(Strict):
    """An approver's answer."""

    comment: Annotated[str | None, Field(max_length=2000)] = None


class Answer(BaseModel):
    """The signed answer: `signature` covers `hashed.approval.v1`, a newline, then RFC 8785 JSON of these fields."""

    id: str
    status: Literal["approved", "denied", "expired"]
    decided_by: str
    decided_at: str = Field(description="Nanoseconds since the epoch, decimal.")
    comment: str | None
    args_digest: str
    agent_key: str


class ApprovalOut(BaseModel):
    """An approval request; `answer` and `signature` once it is approved, denied or expired."""

    id: str
    agent_id: str
    agent: str
    agent_key: str
    call: str
    tool: str
    args: dict[str, Any]
    args_digest: str
    rule: str | None
    reason: str
    status: Literal["pending", "approved", "denied", "expired"]
    created_at: str | None
    expires_at: str | None
    decided_by: str | None
    decided_at: str | None
    comment: str | None
    answer: Answer | None
    signature: str | None = Field(description="Ed25519 by the backend key (GET /v1/backend-key), hex.")


class ApprovalPage(BaseModel):
    """Approval requests, newest first."""

    items: list[ApprovalOut]
    next_cursor: str | None


class BackendKeyOut(BaseModel):
    """The key approval answers are signed with."""

    public_key: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    approval_context: str = Field(description="The line signed before the answer's canonical JSON.")
    checkpoint_key: str = Field(
        description="The same key as a signed-note verifier key (`name+id+key`): it signs agents' checkpoints."
    )
