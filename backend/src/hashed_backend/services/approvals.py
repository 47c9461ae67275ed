"""Approval answers: signed by the backend key, expiry decided the same way by every replica.

An expired request is answered `expired`, decided by `backend` at its expiry time, so that any replica
that notices the expiry writes (and signs) the very same answer.
"""

from __future__ import annotations

import json
from typing import Any

import nacl.signing
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from hashed.protocol import approval_message
from hashed_backend.credentials import iso
from hashed_backend.db.models import Approval

__all__ = ["answer_of", "expire_if_due", "public_view", "sign_answer"]


def answer_of(row: Any) -> dict[str, Any] | None:
    """The signed fields of an answered request (None while pending)."""
    if row.status == "pending":
        return None
    return {
        "id": row.id,
        "status": row.status,
        "decided_by": row.decided_by,
        "decided_at": str(row.decided_ns),
        "comment": row.comment,
        "args_digest": row.args_digest,
        "agent_key": row.agent_key,
    }


def sign_answer(key: nacl.signing.SigningKey, answer: dict[str, Any]) -> str:
    """The backend's signature of an answer, hex."""
    return key.sign(approval_message(answer)).signature.hex()


async def expire_if_due(conn: AsyncConnection, key: nacl.signing.SigningKey, row: Any, now: int) -> bool:
    """Mark a pending request past its expiry as expired (signed); True if this call did it."""
    if row.status != "pending" or row.expires_ns > now:
        return False
    answer = {
        "id": row.id,
        "status": "expired",
        "decided_by": "backend",
        "decided_at": str(row.expires_ns),
        "comment": "no one answered before the request expired",
        "args_digest": row.args_digest,
        "agent_key": row.agent_key,
    }
    result = await conn.execute(
        update(Approval)
        .where(Approval.id == row.id, Approval.status == "pending")
        .values(
            status="expired",
            decided_by=answer["decided_by"],
            decided_ns=row.expires_ns,
            comment=answer["comment"],
            signature=sign_answer(key, answer),
        )
    )
    return result.rowcount == 1


def public_view(row: Any, agent_name: str) -> dict[str, Any]:
    """The API's view of an approval row."""
    return {
        "id": row.id,
        "agent_id": row.agent_id,
        "agent": agent_name,
        "agent_key": row.agent_key,
        "call": row.call_ref,
        "tool": row.tool,
        "args": json.loads(row.args),  # the standard library: args may hold integers beyond 64 bits
        "args_digest": row.args_digest,
        "rule": row.rule,
        "reason": row.reason,
        "status": row.status,
        "created_at": iso(row.created_ns),
        "expires_at": iso(row.expires_ns),
        "decided_by": row.decided_by,
        "decided_at": iso(row.decided_ns),
        "comment": row.comment,
        "answer": answer_of(row),
        "signature": row.signature,
    }
