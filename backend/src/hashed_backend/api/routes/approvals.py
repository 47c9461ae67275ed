"""Approval requests: agents ask and wait, people approve or deny, the backend signs each answer.

Long-polls poll the database, so an answer given through any replica reaches the agent. The signed message
is `hashed.shipping.approval_message`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from hashed_backend.credentials import new_id, now_ns
from hashed_backend.db.models import Agent, Approval
from hashed_backend.deps import AdminOrAgent, Caller, State, Writer
from hashed_backend.deps import Agent as AgentCaller
from hashed_backend.errors import ApiError
from hashed_backend.jsontext import json_text
from hashed_backend.schemas.approvals import ApprovalIn, ApprovalOut, ApprovalPage, DecisionIn
from hashed_backend.services.approvals import expire_if_due, public_view, sign_answer

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
ApprovalId = Annotated[str, Path(max_length=40)]


def _scoped(caller: Caller) -> Any:
    query = (
        select(Approval, Agent.name.label("agent_name"))
        .join(Agent, Agent.id == Approval.agent_id)
        .where(Approval.org_id == caller.org_id)
    )
    if caller.kind == "agent":
        query = query.where(Approval.agent_id == caller.id)
    return query


async def _load(state: State, caller: Caller, approval_id: str) -> ApprovalOut:
    """Read one request (expiring it first if it is due)."""
    query = _scoped(caller).where(Approval.id == approval_id)
    async with state.db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise ApiError(404, "approval_not_found", f"no approval request {approval_id} visible to this caller")
    if row.status == "pending" and row.expires_ns <= now_ns():
        async with state.db.write() as conn:
            await expire_if_due(conn, state.backend_key, row, now_ns())
        async with state.db.read() as conn:
            row = (await conn.execute(query)).one()
    return ApprovalOut.model_validate(public_view(row, row.agent_name))


@router.post("", status_code=201, response_model=ApprovalOut)
async def request_approval(body: ApprovalIn, caller: AgentCaller, state: State, response: Response) -> ApprovalOut:
    """Ask for a person's approval of a pending call. Asking again for the same `call` returns the first request."""
    s = state.settings
    timeout = min(body.timeout or s.approval_timeout_s, s.approval_max_timeout_s)
    now = now_ns()
    approval_id = body.id or new_id("apr")
    if caller.public_key is None:  # pragma: no cover - `Agent` callers always carry their key
        raise ApiError(401, "signature_missing", "agent requests must be signed")
    try:
        async with state.db.write() as conn:
            await conn.execute(
                insert(Approval).values(
                    id=approval_id,
                    org_id=caller.org_id,
                    agent_id=caller.id,
                    agent_key=caller.public_key,
                    call_ref=body.call,
                    tool=body.tool,
                    args=json_text(body.args),
                    args_digest=body.args_digest,
                    rule=body.rule,
                    reason=body.reason,
                    status="pending",
                    created_ns=now,
                    expires_ns=now + int(timeout * 1e9),
                )
            )
    except IntegrityError:
        async with state.db.read() as conn:
            existing = (
                await conn.execute(
                    select(Approval.id).where(Approval.agent_id == caller.id, Approval.call_ref == body.call)
                )
            ).first()
        if existing is None:  # the id is another request's (96 random bits: never by chance)
            raise ApiError(409, "approval_id_taken", f"approval id {approval_id} is taken; send another") from None
        response.status_code = 200
        approval_id = existing.id
    return await _load(state, caller, approval_id)


@router.get("", response_model=ApprovalPage)
async def list_approvals(
    caller: AdminOrAgent,
    state: State,
    status: Literal["pending", "approved", "denied", "expired"] | None = None,
    cursor: Annotated[
        str | None,
        Query(max_length=80, pattern=r"^[0-9]{1,19}:[A-Za-z0-9_]{1,60}$", description="`next_cursor` of a page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ApprovalPage:
    """Requests, newest first (an agent sees its own). Expired ones are marked so when listed."""
    now = now_ns()
    async with state.db.read() as conn:
        due = (
            await conn.execute(
                _scoped(caller).where(Approval.status == "pending", Approval.expires_ns <= now).limit(1000)
            )
        ).all()
    if due:  # expire what is due first, so that `status=pending` tells the truth
        async with state.db.write() as conn:
            for row in due:
                await expire_if_due(conn, state.backend_key, row, now)
    query = _scoped(caller)
    if status is not None:
        query = query.where(Approval.status == status)
    if cursor is not None:
        created, _, last_id = cursor.partition(":")
        if not (created.isascii() and created.isdigit() and len(created) <= 19 and int(created) < 2**63) or not last_id:
            raise ApiError(422, "invalid_request", "cursor: pass the next_cursor of a previous page")
        query = query.where(
            (Approval.created_ns < int(created)) | ((Approval.created_ns == int(created)) & (Approval.id > last_id))
        )
    async with state.db.read() as conn:
        rows = (await conn.execute(query.order_by(Approval.created_ns.desc(), Approval.id).limit(limit + 1))).all()
    items = [public_view(row, row.agent_name) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = f"{last.created_ns}:{last.id}" if last is not None else None
    return ApprovalPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get("/{approval_id}", response_model=ApprovalOut)
async def get_approval(
    approval_id: ApprovalId,
    caller: AdminOrAgent,
    state: State,
    wait: Annotated[float, Query(ge=0, le=3600, description="Seconds to wait for an answer (long-poll).")] = 0,
) -> ApprovalOut:
    """One request; with `wait`, answers as soon as it is decided or expires (or when the wait is over)."""
    deadline = time.monotonic() + min(wait, state.settings.max_wait_s)
    while True:
        approval = await _load(state, caller, approval_id)
        if approval.status != "pending" or time.monotonic() >= deadline:
            return approval
        await asyncio.sleep(min(state.settings.poll_interval_s, max(0.0, deadline - time.monotonic())))


async def _decide(state: State, caller: Caller, approval_id: str, status: str, comment: str | None) -> ApprovalOut:
    current = await _load(state, caller, approval_id)
    if current.status != "pending":
        raise ApiError(409, "approval_decided", f"approval request {approval_id} is already {current.status}")
    now = now_ns()
    answer = {
        "id": approval_id,
        "status": status,
        "decided_by": caller.label,
        "decided_at": str(now),
        "comment": comment,
        "args_digest": current.args_digest,
        "agent_key": current.agent_key,
    }
    async with state.db.write() as conn:
        done = await conn.execute(
            update(Approval)
            .where(
                Approval.id == approval_id,
                Approval.org_id == caller.org_id,
                Approval.status == "pending",
                Approval.expires_ns > now,
            )
            .values(
                status=status,
                decided_by=caller.label,
                decided_ns=now,
                comment=comment,
                signature=sign_answer(state.backend_key, answer),
            )
        )
    if done.rowcount != 1:
        latest = await _load(state, caller, approval_id)
        raise ApiError(409, "approval_decided", f"approval request {approval_id} is already {latest.status}")
    return await _load(state, caller, approval_id)


@router.post("/{approval_id}/approve", response_model=ApprovalOut)
async def approve(approval_id: ApprovalId, body: DecisionIn, caller: Writer, state: State) -> ApprovalOut:
    """Approve a pending request (as the calling person or admin key); the answer is signed."""
    return await _decide(state, caller, approval_id, "approved", body.comment)


@router.post("/{approval_id}/deny", response_model=ApprovalOut)
async def deny(approval_id: ApprovalId, body: DecisionIn, caller: Writer, state: State) -> ApprovalOut:
    """Deny a pending request; the answer is signed."""
    return await _decide(state, caller, approval_id, "denied", body.comment)
