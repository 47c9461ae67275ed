"""People of the caller's organisation: list, add, change a role, remove (issue #15).

Roles: an `owner` may do everything; an `admin` everything but add, change or remove owners; a `viewer` reads
only. An organisation always keeps an owner. Removing a person ends their sessions at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from hashed_backend.credentials import hash_password, iso, new_id, now_ns
from hashed_backend.db.models import Session, User
from hashed_backend.deps import Admin, Caller, State, Writer
from hashed_backend.errors import ApiError
from hashed_backend.schemas.auth import RoleIn, UserIn, UserOut

router = APIRouter(prefix="/v1/users", tags=["people"])


def _out(row: Any) -> UserOut:
    return UserOut(id=row.id, email=row.email, role=row.role, created_at=iso(row.created_ns))


@router.get("", response_model=list[UserOut])
async def list_users(caller: Admin, state: State) -> list[UserOut]:
    """Everyone in the caller's organisation."""
    async with state.db.read() as conn:
        rows = await conn.execute(select(User).where(User.org_id == caller.org_id).order_by(User.created_ns))
        return [_out(r) for r in rows]


def _may_touch(caller: Caller, *roles: str) -> None:
    if "owner" in roles and caller.role != "owner":
        raise ApiError(403, "owner_required", "only an owner can add, change or remove an owner")


@router.post("", status_code=201, response_model=UserOut)
async def create_user(body: UserIn, caller: Writer, state: State) -> UserOut:
    """Add a person to the caller's organisation.

    The same e-mail may have an account in other organisations (a separate account, with this password and
    role), so the answer never tells whether it has one elsewhere; one already in this organisation is 409
    `already_member`.
    """
    _may_touch(caller, body.role)
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
        raise ApiError(
            409, "already_member", "this e-mail has an account in this organisation already: change its role instead"
        ) from None
    return UserOut(id=user_id, email=body.email.lower(), role=body.role, created_at=iso(now))


async def _user(state: State, caller: Caller, user_id: str) -> Any:
    async with state.db.read() as conn:
        row = (await conn.execute(select(User).where(User.id == user_id, User.org_id == caller.org_id))).first()
    if row is None:
        raise ApiError(404, "user_not_found", f"no person {user_id} in this organisation")
    return row


async def _owners(conn: AsyncConnection, org_id: str) -> int:
    count = await conn.execute(
        select(func.count()).select_from(User).where(User.org_id == org_id, User.role == "owner")
    )
    return int(count.scalar_one())


@router.put("/{user_id}/role", response_model=UserOut)
async def change_role(user_id: str, body: RoleIn, caller: Writer, state: State) -> UserOut:
    """Give a person another role; the last owner stays an owner."""
    row = await _user(state, caller, user_id)
    _may_touch(caller, row.role, body.role)
    async with state.db.write() as conn:
        await conn.execute(update(User).where(User.id == user_id).values(role=body.role))
        if await _owners(conn, caller.org_id) == 0:
            raise ApiError(409, "last_owner", "an organisation keeps at least one owner: make someone else owner first")
    return _out(await _user(state, caller, user_id))


@router.delete("/{user_id}", status_code=204)
async def remove_user(user_id: str, caller: Writer, state: State) -> Response:
    """Remove a person: their account and sessions end at once (what they did stays in versions and answers)."""
    row = await _user(state, caller, user_id)
    _may_touch(caller, row.role)
    async with state.db.write() as conn:
        await conn.execute(delete(Session).where(Session.user_id == user_id))
        await conn.execute(delete(User).where(User.id == user_id, User.org_id == caller.org_id))
        if await _owners(conn, caller.org_id) == 0:
            raise ApiError(409, "last_owner", "an organisation keeps at least one owner: make someone else owner first")
    return Response(status_code=204)
