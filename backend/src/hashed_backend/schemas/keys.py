"""API keys: admin keys and agent keys, shown once, stored hashed, with expiry, rotation and revocation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from hashed_backend.schemas.common import Strict

__all__ = ["KeyCreated", "KeyIn", "KeyOut", "RotateIn", "RotateOut"]


class KeyIn(Strict):
    """A new key."""

    kind: Literal["admin", "agent"] = Field(description="admin: manage policies, agents, keys, approvals; agent: ship.")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    expires_in_days: Annotated[float | None, Field(gt=0, le=3650)] = None
    rate_per_s: Annotated[float | None, Field(gt=0, le=100_000)] = Field(
        default=None, description="Requests per second allowed to this key (default: the server's setting)."
    )


class KeyOut(BaseModel):
    """A key, without its secret."""

    id: str
    kind: str
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    status: Literal["active", "expired", "revoked"]
    created_at: str | None
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    rotated_from: str | None
    rate_per_s: float | None


class KeyCreated(KeyOut):
    """A new key: `key` is shown this once; only its SHA-256 is kept."""

    key: str


class RotateIn(Strict):
    """Rotation: a new key now; the old one keeps working for `overlap_seconds`, then expires."""

    overlap_seconds: Annotated[float, Field(ge=0, le=30 * 86400)] = 3600
    expires_in_days: Annotated[float | None, Field(gt=0, le=3650)] = None


class RotateOut(BaseModel):
    """The old key (with its shortened expiry) and the new one."""

    old: KeyOut
    new: KeyCreated
