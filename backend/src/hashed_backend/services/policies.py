"""Policy documents: validation by the core, versions, what a push would change, the policy an agent gets.

A document belongs to the organisation (scope `org`) or to one agent (scope = the agent's id). An agent's
own document, when present, replaces the organisation's entirely (no merging): what the agent enforces is
always exactly one document, whose hash its decision records carry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hashed.policy import Policy, policy_hash, policy_issues
from hashed_backend.db.models import PolicyVersion
from hashed_backend.errors import ApiError

__all__ = ["diff", "latest", "validate"]

_SETTINGS = ("version", "default", "mode", "redact")


def validate(text: str) -> tuple[Policy, str]:
    """The core's verdict on a document: the policy and its hash, or a 422 `policy_invalid` listing every issue."""
    result = policy_issues(text, path="policy.yaml")
    if isinstance(result, Policy):
        return result, policy_hash(result)
    issues = [{"line": issue.line, "field": issue.field, "message": issue.message} for issue in result]
    first = result[0]
    where = f"line {first.line}: " if first.line is not None else ""
    field = f"{first.field}: " if first.field else ""
    more = f" (and {len(result) - 1} more)" if len(result) > 1 else ""
    raise ApiError(422, "policy_invalid", f"{where}{field}{first.message}{more}", details=issues)


def diff(current: Policy | None, new: Policy) -> dict[str, Any]:
    """Rules added, removed and changed (by id, with the fields that differ), and changed settings."""
    before = {rule.id: rule.model_dump(mode="json", by_alias=True) for rule in (current.rules if current else [])}
    after = {rule.id: rule.model_dump(mode="json", by_alias=True) for rule in new.rules}
    changed = []
    for rule_id in after.keys() & before.keys():
        old, fresh = before[rule_id], after[rule_id]
        fields = sorted(k for k in old.keys() | fresh.keys() if old.get(k) != fresh.get(k))
        if fields:
            changed.append({"id": rule_id, "fields": fields})
    old_doc = current.model_dump(mode="json", by_alias=True) if current else {}
    new_doc = new.model_dump(mode="json", by_alias=True)
    settings = {
        name: {"before": old_doc.get(name), "after": new_doc[name]}
        for name in _SETTINGS
        if old_doc.get(name) != new_doc[name]
    }
    added = [rule_id for rule_id in after if rule_id not in before]
    removed = [rule_id for rule_id in before if rule_id not in after]
    order = {rule_id: index for index, rule_id in enumerate(after)}
    changed.sort(key=lambda change: order[str(change["id"])])
    return {
        "added": added,
        "removed": removed,
        "changed": changed,
        "settings": settings,
        "unchanged": not (added or removed or changed or settings),
    }


async def latest(conn: AsyncConnection, org_id: str, scope: str) -> Any:
    """The newest version row of a document, or None."""
    return (
        await conn.execute(
            select(PolicyVersion)
            .where(PolicyVersion.org_id == org_id, PolicyVersion.scope == scope)
            .order_by(PolicyVersion.version.desc())
            .limit(1)
        )
    ).first()
