"""Policy documents: versions, pushes, diffs, and the policy an agent is served."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from hashed_backend.schemas.common import Strict

__all__ = ["Change", "DiffOut", "EffectivePolicyOut", "PolicyIn", "PolicyOut", "PolicyTextIn", "RuleChange"]

PolicyText = Annotated[str, Field(max_length=512 * 1024, description="The policy, as in .hashed/policy.yaml.")]


class PolicyTextIn(Strict):
    """A policy document to compare with the current one."""

    yaml: PolicyText


class PolicyIn(Strict):
    """A new version of a policy document."""

    yaml: PolicyText
    allow_removals: bool = Field(default=False, description="Needed when the push removes rules.")
    base_version: int | None = Field(default=None, ge=0, description="Refuse (409) unless this is the current version.")
    comment: Annotated[str | None, Field(max_length=2000)] = None


class PolicyOut(BaseModel):
    """One version of a document (`yaml` null: the document was removed in this version)."""

    scope: str = Field(description="`org`, or the id of the agent the document belongs to.")
    version: int
    yaml: str | None
    hash: str | None
    created_by: str
    created_at: str | None
    comment: str | None


class EffectivePolicyOut(BaseModel):
    """The policy an agent must enforce: its own document when it has one, else its organisation's."""

    source: str = Field(description="`agent` or `org`.")
    version: int
    hash: str
    yaml: str


class Change(BaseModel):
    """A top-level setting that changes."""

    before: Any
    after: Any


class RuleChange(BaseModel):
    """A rule whose content changes, and which of its fields do."""

    id: str
    fields: list[str]


class DiffOut(BaseModel):
    """What pushing a document would change, rule by rule."""

    current_version: int
    current_hash: str | None
    new_hash: str
    added: list[str]
    removed: list[str]
    changed: list[RuleChange]
    settings: dict[str, Change] = Field(description="default, mode, redact: before and after, when they change.")
    unchanged: bool
