"""People of the caller's organisation."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from hashed_backend.credentials import hash_password, iso, new_id, now_ns
from hashed_backend.db.models import User
from hashed_backend.deps import Admin, State
from hashed_backend.errors import ApiError
from hashed_backend.schemas.auth import UserIn, UserOut

router = APIRouter(prefix="/v1/users", tags=["people"])


@router.get("", response_model=list[UserOut])
async def list_users(caller: Admin, state: State) -> list[UserOut]:
    """Everyone in the caller's organisation."""
    async with state.db.read() as conn:
        rows = await conn.execute(select(User).where(User.org_id == caller.org_id).order_by(User.created_ns))
        return [UserOut(id=r.id, email=r.email, role=r.role, created_at=iso(r.created_ns)) for r in rows]


@router.post("", status_code=201, response_model=UserOut)
async def create_user(body: UserIn, caller: Admin, state: State) -> UserOut:
    """Add a person to the caller's organisation."""
    password_hash = await asyncio.to_thread(hash_password, body.password)
    user_id, now = new_id("usr"), now_ns()
    try:
        async with state.db.write() as conn:
            await conn.execute(
                insert(User).values(
                    id=user_id,
                    org_id=caller.org_id,
                    email=body.email.lower(),
                    password_hash=password_hash,
                    role=body.role,
                    created_ns=now,
                )
            )
    except IntegrityError:
        raise ApiError(409, "email_taken", "an account with this e-mail exists") from None
    return UserOut(id=user_id, email=body.email.lower(), role=body.role, created_at=iso(now))
