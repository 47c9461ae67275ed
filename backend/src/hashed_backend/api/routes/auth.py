"""People: sign-up, log-in and log-out (server-side sessions), who am I, one's own password and sessions."""

from __future__ import annotations

import asyncio
import secrets

from fastapi import APIRouter, Request
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from hashed_backend.auth import SESSION_COOKIE
from hashed_backend.credentials import hash_password, iso, new_id, now_ns, secret_hash, verify_password
from hashed_backend.db.models import Org, Session, User
from hashed_backend.deps import Admin, AuthRateLimit, Caller, State
from hashed_backend.errors import ApiError
from hashed_backend.schemas.auth import LoginIn, MeOut, PasswordIn, SessionOut, SignupIn

router = APIRouter(prefix="/v1/auth", tags=["people"])


async def _start_session(state: State, response: Response, user_id: str, org_id: str) -> None:
    token = secrets.token_urlsafe(32)
    now = now_ns()
    lifetime = int(state.settings.session_days * 86400)
    async with state.db.write() as conn:
        await conn.execute(
            insert(Session).values(
                id=new_id("ses"),
                token_hash=secret_hash(token),
                user_id=user_id,
                org_id=org_id,
                created_ns=now,
                expires_ns=now + lifetime * 1_000_000_000,
            )
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=lifetime,
        httponly=True,
        secure=state.settings.cookie_secure,
        samesite="lax",
        path="/",
    )


async def _me(state: State, user_id: str) -> MeOut:
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(User.id, User.email, User.role, User.created_ns, Org.id.label("org_id"), Org.name)
                .join(Org, Org.id == User.org_id)
                .where(User.id == user_id)
            )
        ).one()
    return MeOut.model_validate(
        {
            "user": {"id": row.id, "email": row.email, "role": row.role, "created_at": iso(row.created_ns)},
            "org": {"id": row.org_id, "name": row.name},
        }
    )


@router.post("/signup", status_code=201, response_model=MeOut, dependencies=[AuthRateLimit])
async def signup(body: SignupIn, state: State, response: Response) -> MeOut:
    """Create an organisation and its owner, and log the owner in (sets the session cookie)."""
    if not state.settings.allow_signup:
        raise ApiError(403, "signup_disabled", "sign-up is disabled on this backend; ask an admin for an account")
    password_hash = await asyncio.to_thread(hash_password, body.password)
    org_id, user_id, now = new_id("org"), new_id("usr"), now_ns()
    try:
        async with state.db.write() as conn:
            await conn.execute(insert(Org).values(id=org_id, name=body.org_name, created_ns=now))
            await conn.execute(
                insert(User).values(
                    id=user_id,
                    org_id=org_id,
                    email=body.email.lower(),
                    password_hash=password_hash,
                    role="owner",
                    created_ns=now,
                )
            )
    except IntegrityError:
        raise ApiError(409, "email_taken", "an account with this e-mail exists: log in instead") from None
    await _start_session(state, response, user_id, org_id)
    return await _me(state, user_id)


@router.post("/login", response_model=MeOut, dependencies=[AuthRateLimit])
async def login(body: LoginIn, state: State, response: Response) -> MeOut:
    """Check e-mail and password; on success set the session cookie."""
    async with state.db.read() as conn:
        row = (
            await conn.execute(select(User.id, User.org_id, User.password_hash).where(User.email == body.email.lower()))
        ).first()
    ok = await asyncio.to_thread(verify_password, row.password_hash if row else None, body.password)
    if row is None or not ok:
        raise ApiError(401, "login_failed", "wrong e-mail or password")
    await _start_session(state, response, row.id, row.org_id)
    return await _me(state, row.id)


@router.post("/logout", status_code=204)
async def logout(request: Request, state: State) -> Response:
    """End the current session (its row is marked revoked; the cookie is cleared)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with state.db.write() as conn:
            await conn.execute(
                update(Session)
                .where(Session.token_hash == secret_hash(token), Session.revoked_ns.is_(None))
                .values(revoked_ns=now_ns())
            )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut)
async def me(caller: Admin, state: State) -> MeOut:
    """The logged-in person (sessions only: an API key is not a person)."""
    return await _me(state, _person(caller).id)


def _person(caller: Caller) -> Caller:
    if caller.kind != "user":
        raise ApiError(403, "forbidden", "this endpoint is for people logged in with a session")
    return caller


@router.post("/password", status_code=204)
async def change_password(body: PasswordIn, caller: Admin, state: State) -> Response:
    """Change the caller's own password; every other session of theirs ends (this one stays)."""
    person = _person(caller)
    async with state.db.read() as conn:
        stored = (await conn.execute(select(User.password_hash).where(User.id == person.id))).scalar_one()
    if not await asyncio.to_thread(verify_password, stored, body.current_password):
        raise ApiError(403, "password_wrong", "the current password is wrong")
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    async with state.db.write() as conn:
        await conn.execute(update(User).where(User.id == person.id).values(password_hash=new_hash))
        await conn.execute(
            update(Session)
            .where(Session.user_id == person.id, Session.id != person.session_id, Session.revoked_ns.is_(None))
            .values(revoked_ns=now_ns())
        )
    return Response(status_code=204)


@router.get("/sessions", response_model=list[SessionOut])
async def sessions(caller: Admin, state: State) -> list[SessionOut]:
    """The caller's live sessions, newest first."""
    person = _person(caller)
    async with state.db.read() as conn:
        rows = await conn.execute(
            select(Session.id, Session.created_ns, Session.expires_ns)
            .where(Session.user_id == person.id, Session.revoked_ns.is_(None), Session.expires_ns > now_ns())
            .order_by(Session.created_ns.desc())
        )
        return [
            SessionOut(
                id=r.id, created_at=iso(r.created_ns), expires_at=iso(r.expires_ns), current=r.id == person.session_id
            )
            for r in rows
        ]


@router.post("/sessions/{session_id}/revoke", status_code=204)
async def revoke_session(session_id: str, caller: Admin, state: State) -> Response:
    """End one of the caller's sessions (another device); 404 for anyone else's."""
    person = _person(caller)
    async with state.db.write() as conn:
        ended = await conn.execute(
            update(Session)
            .where(Session.id == session_id, Session.user_id == person.id, Session.revoked_ns.is_(None))
            .values(revoked_ns=now_ns())
        )
    if ended.rowcount != 1:
        raise ApiError(404, "session_not_found", f"you have no live session {session_id}")
    return Response(status_code=204)
