"""Shared pieces of the request and response models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["AgentName", "ErrorBody", "ErrorOut", "Head", "Hex64", "Hex128", "Strict"]

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Hex128 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
AgentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]


class Strict(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Head(BaseModel):
    """The last verified record of an agent's chain (seq 0 and 64 zeros before the first)."""

    seq: int
    hash: str


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str = Field(description="Machine-readable reason (docs/api.md lists them).")
    message: str = Field(description="What happened and what to do next.")
    details: object | None = Field(default=None, description="Per-field issues, when there are several.")


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer has this shape."""

    error: ErrorBody
