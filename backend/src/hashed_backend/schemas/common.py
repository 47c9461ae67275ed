"""Shared pieces of the request and response models."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

__all__ = ["AgentName", "ErrorBody", "ErrorOut", "Head", "Hex64", "Hex128", "Strict", "storable"]

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Hex128 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
AgentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]


def storable(value: Any) -> str | None:
    r"""Where `value` holds text a database cannot store, as a path (`""` for the value itself); None if nowhere.

    PostgreSQL refuses the NUL character in text, and neither database can encode a lone surrogate
    (JSON `"\ud800"`). SQLite would store a NUL, so both are refused alike, before any database sees them.

    Example:
        >>> storable({"a": ["ok", "bad\x00"]})
        'a.1'
        >>> storable("fine") is None
        True
    """
    if isinstance(value, str):
        if "\x00" in value:
            return ""
        try:
            value.encode()
        except UnicodeEncodeError:
            return ""
        return None
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = storable(key) if isinstance(key, str) else None
        if where is None:
            where = storable(item)
            if where is None:
                continue
        return f"{key}.{where}".rstrip(".") if where else str(key)
    return None


class Strict(BaseModel):
    """A request body: unknown fields are an error, not silently dropped; no text a database cannot store."""

    model_config = ConfigDict(extra="forbid")
    unchecked_text: ClassVar[frozenset[str]] = frozenset()  # fields checked elsewhere (ingest quarantines records)

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.unchecked_text:
            return value
        where = storable(value)
        if where is not None:
            inside = f" (at {where})" if where else ""
            raise PydanticCustomError(
                "unstorable_text",
                "must not contain the NUL character or a lone surrogate{inside}",
                {"inside": inside},
            )
        return value


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
