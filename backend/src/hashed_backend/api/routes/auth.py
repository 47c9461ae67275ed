"""People: sign-up, log-in and log-out (server-side sessions), who am I, one's own password and sessions.

An account belongs to one organisation; the same e-mail may have accounts in several (so that sign-up and
adding a person never tell whether an address has an account elsewhere). A log-in checks the password against
each of that e-mail's accounts and remembers, on its session, those it matched: the person switches between
their organisations (`POST /v1/auth/switch`) without typing the password again, and only to those.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from fastapi import APIRouter, Request
from sqlalchemy import insert, or_, select, update
from starlette.responses import Response

from hashed_backend.auth import SESSION_COOKIE
from hashed_backend.credentials import hash_password, iso, new_id, now_ns, secret_hash, verify_password
from hashed_backend.db.models import Org, Session, User
from hashed_backend.deps import Admin, AuthRateLimit, Caller, State
from hashed_backend.errors import ApiError
from hashed_backend.schemas.auth import (
    LoginIn,
    MeOut,
    OrgOut,
    PasswordIn,
    SessionOut,
    SignupIn,
    SwitchIn,
    UserOut,
)

router = APIRouter(prefix="/v1/auth", tags=["people"])

# Accounts of one e-mail checked by a log-in that names no organisation (each check is an argon2 verification,
# slow on purpose): a person with more names the one they want (`org`).
MAX_ACCOUNTS = 10


def _fingerprint(password_hash: str) -> str:
    """Short, one-way: a switch is refused once the target account's password changed since the log-in."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _accounts(matched: list[tuple[str, str]]) -> str:
    """What a session stores of the accounts its log-in matched: `user_id:fingerprint`, space-separated."""
    return " ".join(f"{user_id}:{_fingerprint(password_hash)}" for user_id, password_hash in matched)


async def _start_session(state: State, response: Response, user_id: str, org_id: str, accounts: str) -> None:
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
                accounts=accounts,
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


async def _me(state: State, user_id: str, accounts: str | None) -> MeOut:
    ids = [entry.split(":", 1)[0] for entry in (accounts or "").split()] or [user_id]
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(User.id, User.email, User.role, User.created_ns, Org.id.label("org_id"), Org.name)
                .join(Org, Org.id == User.org_id)
                .where(User.id == user_id)
            )
        ).one()
        orgs = (
            await conn.execute(
                select(Org.id, Org.name).join(User, User.org_id == Org.id).where(User.id.in_(ids)).order_by(Org.name)
            )
        ).all()
    return MeOut(
        user=UserOut(id=row.id, email=row.email, role=row.role, created_at=iso(row.created_ns)),
        org=OrgOut(id=row.org_id, name=row.name),
        orgs=[OrgOut(id=org.id, name=org.name) for org in orgs],
    )


@router.post("/signup", status_code=201, response_model=MeOut, dependencies=[AuthRateLimit])
async def signup(body: SignupIn, state: State, response: Response) -> MeOut:
    """Create an organisation and its owner, and log the owner in (sets the session cookie)."""
    if not state.settings.allow_signup:
        raise ApiError(403, "signup_disabled", "sign-up is disabled on this backend; ask an admin for an account")
    password_hash = await asyncio.to_thread(hash_password, body.password)
    org_id, user_id, now = new_id("org"), new_id("usr"), now_ns()
    async with state.db.write() as conn:  # never a conflict: an e-mail may have an account in every organisation
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
    accounts = _accounts([(user_id, password_hash)])
    await _start_session(state, response, user_id, org_id, accounts)
    return await _me(state, user_id, accounts)


def _check_all(stored: list[str], password: str) -> list[bool]:
    """Which stored hashes `password` matches; with none stored, spends one check's time and says no."""
    if not stored:
        verify_password(None, password)
    return [verify_password(one, password) for one in stored]


@router.post("/login", response_model=MeOut, dependencies=[AuthRateLimit])
async def login(body: LoginIn, state: State, response: Response) -> MeOut:
    """Check e-mail and password against each of that e-mail's accounts; on success set the session cookie.

    The session is in `org` (an organisation's id or name) when given, else in the oldest matching account's
    organisation; `orgs` in the answer lists every organisation it may switch to.
    """
    query = (
        select(User.id, User.org_id, User.password_hash)
        .join(Org, Org.id == User.org_id)
        .where(User.email == body.email.lower())
        .order_by(User.created_ns, User.id)
        .limit(MAX_ACCOUNTS)
    )
    if body.org is not None:
        query = query.where(or_(Org.id == body.org, Org.name == body.org))
    async with state.db.read() as conn:
        rows = (await conn.execute(query)).all()
    verdicts = await asyncio.to_thread(_check_all, [row.password_hash for row in rows], body.password)
    matched = [row for row, ok in zip(rows, verdicts, strict=True) if ok]
    if not matched:
        raise ApiError(401, "login_failed", "wrong e-mail or password")
    first, accounts = matched[0], _accounts([(row.id, row.password_hash) for row in matched])
    await _start_session(state, response, first.id, first.org_id, accounts)
    return await _me(state, first.id, accounts)


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
    person = _person(caller)
    return await _me(state, person.id, await _session_accounts(state, person.session_id))


async def _session_accounts(state: State, session_id: str | None) -> str | None:
    async with state.db.read() as conn:
        return (await conn.execute(select(Session.accounts).where(Session.id == session_id))).scalar_one_or_none()


@router.post("/switch", response_model=MeOut)
async def switch(body: SwitchIn, caller: Admin, state: State, response: Response) -> MeOut:
    """Move this log-in to another organisation whose account it matched (a new session; this one ends).

    Refused (404 `org_not_found`) for an organisation the log-in did not match, or whose account was removed or
    got a new password since.
    """
    person = _person(caller)
    accounts = await _session_accounts(state, person.session_id)
    allowed = dict(entry.split(":", 1) for entry in (accounts or "").split() if ":" in entry)
    async with state.db.read() as conn:
        target = (
            await conn.execute(
                select(User.id, User.password_hash).where(User.org_id == body.org_id, User.id.in_(list(allowed)))
            )
        ).first()
    if target is None or allowed.get(target.id) != _fingerprint(target.password_hash):
        raise ApiError(404, "org_not_found", f"this log-in has no account in {body.org_id}: log in to it instead")
    async with state.db.write() as conn:
        await conn.execute(update(Session).where(Session.id == person.session_id).values(revoked_ns=now_ns()))
    await _start_session(state, response, target.id, body.org_id, accounts or "")
    return await _me(state, target.id, accounts)


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
