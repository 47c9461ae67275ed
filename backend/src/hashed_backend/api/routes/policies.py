"""Policy documents and the policy served to agents.

Documents belong to the organisation (`scope` = `org`) or to one agent (`scope` = the agent id); an agent
gets its effective policy from `GET /v1/policy`, with ETag = policy hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from hashed.policy import parse_policy
from hashed_backend.credentials import iso, now_ns
from hashed_backend.db.models import Agent, PolicyVersion
from hashed_backend.deps import Admin, State, Writer
from hashed_backend.deps import Agent as AgentCaller
from hashed_backend.errors import ApiError
from hashed_backend.schemas.policies import DiffOut, EffectivePolicyOut, PolicyIn, PolicyOut, PolicyTextIn
from hashed_backend.services import policies

router = APIRouter(tags=["policies"])

Scope = Annotated[str, Path(max_length=40, description="`org`, or an agent id (that agent's own document).")]


def _view(row: Any) -> PolicyOut:
    return PolicyOut(
        scope=row.scope,
        version=row.version,
        yaml=row.yaml,
        hash=row.hash,
        created_by=row.created_by,
        created_at=iso(row.created_ns),
        comment=row.comment,
    )


async def _check_scope(state: State, org_id: str, scope: str) -> None:
    if scope == "org":
        return
    async with state.db.read() as conn:
        found = (await conn.execute(select(Agent.id).where(Agent.id == scope, Agent.org_id == org_id))).first()
    if found is None:
        raise ApiError(404, "agent_not_found", f"scope must be `org` or an agent id of this organisation, not {scope}")


async def _current(state: State, org_id: str, scope: str) -> Any:
    async with state.db.read() as conn:
        return await policies.latest(conn, org_id, scope)


@router.get("/v1/policy", response_model=EffectivePolicyOut, responses={304: {"description": "Not modified."}})
async def agent_policy(
    caller: AgentCaller,
    state: State,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response | EffectivePolicyOut:
    """The policy the calling agent enforces: its own document if it has one, else the organisation's.

    ETag is the policy hash (the `policy` field of decision records); `If-None-Match` with it answers 304.
    """
    async with state.db.read() as conn:
        row = await policies.latest(conn, caller.org_id, caller.id)
        source = "agent"
        if row is None or row.yaml is None:
            row, source = await policies.latest(conn, caller.org_id, "org"), "org"
    if row is None or row.yaml is None:
        raise ApiError(404, "policy_missing", "no policy for this agent or its organisation yet: push one")
    etag = f'"{row.hash}"'
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers={"ETag": etag})
    body = EffectivePolicyOut(source=source, version=row.version, hash=row.hash, yaml=row.yaml)
    return Response(body.model_dump_json(), media_type="application/json", headers={"ETag": etag})


@router.get("/v1/policies/{scope}", response_model=PolicyOut)
async def get_policy(scope: Scope, caller: Admin, state: State) -> PolicyOut:
    """The current version of a document."""
    await _check_scope(state, caller.org_id, scope)
    row = await _current(state, caller.org_id, scope)
    if row is None:
        raise ApiError(404, "policy_missing", f"no {scope} policy document yet")
    return _view(row)


@router.post("/v1/policies/{scope}/diff", response_model=DiffOut)
async def diff_policy(scope: Scope, body: PolicyTextIn, caller: Admin, state: State) -> DiffOut:
    """What pushing `yaml` would change: rules added, removed, changed (by id), and top-level settings."""
    await _check_scope(state, caller.org_id, scope)
    new, new_hash = policies.validate(body.yaml)
    row = await _current(state, caller.org_id, scope)
    current = parse_policy(row.yaml) if row is not None and row.yaml is not None else None
    return DiffOut.model_validate(
        {
            "current_version": row.version if row else 0,
            "current_hash": row.hash if row else None,
            "new_hash": new_hash,
            **policies.diff(current, new),
        }
    )


@router.put("/v1/policies/{scope}", response_model=PolicyOut)
async def push_policy(scope: Scope, body: PolicyIn, caller: Writer, state: State, response: Response) -> PolicyOut:
    """Store a new version, validated by the core.

    Removing rules needs `allow_removals: true`; the
    previous versions are kept. Pushing the current text again changes nothing (200, same version).
    """
    await _check_scope(state, caller.org_id, scope)
    new, new_hash = policies.validate(body.yaml)
    row = await _current(state, caller.org_id, scope)
    version = row.version if row else 0
    if body.base_version is not None and body.base_version != version:
        raise ApiError(409, "version_conflict", f"the document is at version {version}, not {body.base_version}")
    if row is not None and row.yaml == body.yaml:
        return _view(row)
    current = parse_policy(row.yaml) if row is not None and row.yaml is not None else None
    changes = policies.diff(current, new)
    if changes["removed"] and not body.allow_removals:
        raise ApiError(
            409,
            "rules_removed",
            f"this push removes rules {', '.join(changes['removed'])}; resend with allow_removals: true to confirm",
            details=changes,
        )
    await _store(state, caller, scope, version + 1, body.yaml, new_hash, body.comment)
    response.status_code = 201
    return _view(await _current(state, caller.org_id, scope))


async def _store(
    state: State, caller: Admin, scope: str, version: int, text: str | None, digest: str | None, comment: str | None
) -> None:
    try:
        async with state.db.write() as conn:
            await conn.execute(
                insert(PolicyVersion).values(
                    org_id=caller.org_id,
                    scope=scope,
                    version=version,
                    yaml=text,
                    hash=digest,
                    created_by=caller.label,
                    created_ns=now_ns(),
                    comment=comment,
                )
            )
    except IntegrityError:
        raise ApiError(409, "version_conflict", "someone else pushed this document at the same time; retry") from None


@router.delete("/v1/policies/{scope}", response_model=PolicyOut)
async def remove_policy(
    scope: Scope,
    caller: Writer,
    state: State,
    comment: Annotated[str | None, Query(max_length=2000)] = None,
) -> PolicyOut:
    """Remove a document, as a new version with no text (history is kept).

    An agent without its own
    document follows the organisation's again.
    """
    await _check_scope(state, caller.org_id, scope)
    row = await _current(state, caller.org_id, scope)
    if row is None or row.yaml is None:
        raise ApiError(404, "policy_missing", f"no {scope} policy document to remove")
    await _store(state, caller, scope, row.version + 1, None, None, comment)
    return _view(await _current(state, caller.org_id, scope))


@router.get("/v1/policies/{scope}/versions", response_model=list[PolicyOut])
async def versions(
    scope: Scope,
    caller: Admin,
    state: State,
    before: Annotated[int | None, Query(ge=1, le=2**31, description="Versions older than this one.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[PolicyOut]:
    """Every version of a document, newest first: who pushed it, when, and the text."""
    await _check_scope(state, caller.org_id, scope)
    query = select(PolicyVersion).where(PolicyVersion.org_id == caller.org_id, PolicyVersion.scope == scope)
    if before is not None:
        query = query.where(PolicyVersion.version < before)
    async with state.db.read() as conn:
        rows = await conn.execute(query.order_by(PolicyVersion.version.desc()).limit(limit))
        return [_view(row) for row in rows]


@router.get("/v1/policies/{scope}/versions/{version}", response_model=PolicyOut)
async def version(
    scope: Scope, version: Annotated[int, Path(ge=1, le=2**31)], caller: Admin, state: State
) -> PolicyOut:
    """One version of a document."""
    await _check_scope(state, caller.org_id, scope)
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(PolicyVersion).where(
                    PolicyVersion.org_id == caller.org_id,
                    PolicyVersion.scope == scope,
                    PolicyVersion.version == version,
                )
            )
        ).first()
    if row is None:
        raise ApiError(404, "policy_missing", f"no version {version} of the {scope} document")
    return _view(row)
