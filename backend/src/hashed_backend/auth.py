"""Resolving the caller of a request: API keys, sessions and signed agent requests (docs/api.md, "Auth").

Every refusal is a 401 (or 403) whose `code` says why: `auth_required`, `key_invalid`, `key_expired`,
`key_revoked`, `session_invalid`, `signature_missing`, `signature_invalid`, `signature_stale`,
`nonce_reused`, `agent_unknown`, `agent_key_retired`, `agent_disabled`, `csrf_refused`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote

import nacl.exceptions
import nacl.signing
from sqlalchemy import Table, and_, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from hashed.protocol import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    NONCE_PATTERN,
    canonical_request,
)
from hashed_backend.credentials import now_ns, secret_hash
from hashed_backend.db.models import Agent, AgentKey, ApiKey, RequestNonce, Session, User
from hashed_backend.errors import ApiError

if TYPE_CHECKING:
    from hashed_backend.deps import AppState

__all__ = ["SESSION_COOKIE", "Caller", "authenticate", "request_target"]

SESSION_COOKIE = "hashed_session"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Built once (hot: every agent request). The key, and the agent that holds the request's signing key in the
# key's organisation, come in one read; the agent columns are NULL when there is no such agent.
_API_KEYS, _AGENT_KEYS, _AGENTS = (cast(Table, model.__table__) for model in (ApiKey, AgentKey, Agent))
_KEY_AND_AGENT = (
    select(
        _API_KEYS,
        _AGENTS.c.id.label("agent_id"),
        _AGENTS.c.name.label("agent_name"),
        _AGENTS.c.public_key.label("agent_key"),
        _AGENTS.c.disabled_ns.label("agent_disabled_ns"),
        _AGENTS.c.head_seq.label("agent_head_seq"),
        _AGENTS.c.head_hash.label("agent_head_hash"),
    )
    .select_from(
        _API_KEYS.outerjoin(
            _AGENT_KEYS,
            and_(_AGENT_KEYS.c.org_id == _API_KEYS.c.org_id, _AGENT_KEYS.c.public_key == bindparam("signer")),
        ).outerjoin(_AGENTS, _AGENTS.c.id == _AGENT_KEYS.c.agent_id)
    )
    .where(_API_KEYS.c.key_hash == bindparam("key_hash"))
)
_REMEMBER_NONCE = insert(cast(Table, RequestNonce.__table__))


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, in which organisation.

    Attributes:
        org_id: the organisation every read and write of this request is confined to.
        kind: `user` (a session), `admin_key` or `agent`.
        id: the user id, API key id, or agent id (agent id is "" for an unregistered signing key).
        label: how the caller is named in versions and approval answers (`alice@example.com`, `key:ops`).
        key_id: the API key used, if any.
        public_key: the agent key that signed the request (agents only).
        agent_name: the registered agent's name (agents only).
        agent_head: the agent's current key and verified head (seq, hash), read with the caller (registered
            agents only). Ingest starts from it; it may have moved since, which ingest detects.
        role: a person's role (`owner`, `admin`, `viewer`); an admin key acts as `admin`.
        session_id: the session used, for a person.
    """

    org_id: str
    kind: Literal["user", "admin_key", "agent"]
    id: str
    label: str
    key_id: str | None = None
    public_key: str | None = None
    agent_name: str | None = None
    agent_head: tuple[str, int, str] | None = None
    role: str | None = None
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """A person or an admin key."""
        return self.kind != "agent"


def request_target(request: Request) -> str:
    """The path and query as the client sent them (what a request signature covers)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.scope["path"])
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "key_invalid", "the Authorization header must be: Bearer <API key>")
    return token.strip()


async def authenticate(
    request: Request, state: AppState, *, signed: bool, registered: bool, agents: bool = True
) -> Caller:
    """The caller of `request`, or an `ApiError` saying why there is none.

    `agents` False: the endpoint is for admins, so an agent key is refused (403) before any signature check.
    """
    token = _bearer(request)
    if token is not None:
        return await _by_key(request, state, token, signed=signed, registered=registered, agents=agents)
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return await _by_session(request, state, session)
    raise ApiError(401, "auth_required", "send an API key (Authorization: Bearer …) or log in (POST /v1/auth/login)")


async def _by_key(
    request: Request, state: AppState, token: str, *, signed: bool, registered: bool, agents: bool
) -> Caller:
    signer = request.headers.get(HEADER_KEY) if signed and agents else None
    async with state.db.read(snapshot=False) as conn:
        key = (await conn.execute(_KEY_AND_AGENT, {"key_hash": secret_hash(token), "signer": signer})).first()
    now = now_ns()
    if key is None:
        raise ApiError(401, "key_invalid", "this API key is not known (check for typos, or create one)")
    if key.revoked_ns is not None and key.revoked_ns <= now:
        raise ApiError(401, "key_revoked", f"API key {key.prefix}… was revoked; ask an admin for a new one")
    if key.expires_ns <= now:
        raise ApiError(401, "key_expired", f"API key {key.prefix}… expired; rotate it (POST /v1/keys/{key.id}/rotate)")
    s = state.settings
    rate = key.rate_per_s or s.rate_per_key
    wait = state.limiter.hit(f"key:{key.id}", rate=rate, burst=max(1, min(s.burst_per_key, int(rate * 4) or 1)))
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"API key {key.prefix}… is over its rate of {rate:g} requests/s; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    if key.kind == "admin":
        return Caller(key.org_id, "admin_key", key.id, f"key:{key.name}", key_id=key.id, role="admin")
    if not agents:
        raise ApiError(403, "forbidden", "an agent cannot call this endpoint")
    if not signed:
        return Caller(key.org_id, "agent", "", f"key:{key.name}", key_id=key.id)
    public_key = await _verify_signature(request, state, now)
    return _agent(key, public_key, registered=registered)


async def _verify_signature(request: Request, state: AppState, now: int) -> str:
    headers = request.headers
    key, stamp = headers.get(HEADER_KEY), headers.get(HEADER_TIMESTAMP)
    nonce, signature = headers.get(HEADER_NONCE), headers.get(HEADER_SIGNATURE)
    if not (key and stamp and nonce and signature):
        raise ApiError(
            401,
            "signature_missing",
            f"agent requests must be signed: send {HEADER_KEY}, {HEADER_TIMESTAMP}, {HEADER_NONCE} and "
            f"{HEADER_SIGNATURE} (docs/api.md, signed requests)",
        )
    if not (
        _HEX64.match(key) and _HEX128.match(signature) and stamp.isascii() and stamp.isdigit() and len(stamp) <= 20
    ):
        raise ApiError(401, "signature_invalid", "malformed signature headers (hex key and signature, decimal time)")
    if not NONCE_PATTERN.match(nonce):
        raise ApiError(401, "signature_invalid", f"{HEADER_NONCE} must be 16-64 characters of [A-Za-z0-9_-]")
    skew = state.settings.signature_skew_s
    if abs(int(stamp) - now // 1_000_000_000) > skew:
        raise ApiError(401, "signature_stale", f"{HEADER_TIMESTAMP} is more than {skew} s from the server's clock")
    message = canonical_request(request.method, request_target(request), stamp, nonce, await request.body())
    try:
        nacl.signing.VerifyKey(bytes.fromhex(key)).verify(message, bytes.fromhex(signature))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        raise ApiError(401, "signature_invalid", "the request signature does not verify with its key") from None
    try:
        await state.db.run_one(
            _REMEMBER_NONCE, {"public_key": key, "nonce": nonce, "expires_ns": now + 2 * skew * 1_000_000_000}
        )
    except IntegrityError:
        raise ApiError(401, "nonce_reused", "this request nonce was used before: a replay is refused") from None
    return key


def _agent(key: Any, public_key: str, *, registered: bool) -> Caller:
    """The caller for an agent key row of `_KEY_AND_AGENT` whose request `public_key` signed."""
    org_id, key_id = key.org_id, key.id
    if key.agent_id is None:
        if registered:
            raise ApiError(401, "agent_unknown", "no agent holds this key here: register it (POST /v1/agents/register)")
        return Caller(org_id, "agent", "", "agent:unknown", key_id=key_id, public_key=public_key)
    if key.agent_disabled_ns is not None:
        raise ApiError(403, "agent_disabled", f"agent {key.agent_name} was disabled by an admin")
    if key.agent_key != public_key and registered:
        raise ApiError(
            401, "agent_key_retired", f"this key of agent {key.agent_name} was rotated out; sign with its new key"
        )
    return Caller(
        org_id,
        "agent",
        key.agent_id,
        f"agent:{key.agent_name}",
        key_id=key_id,
        public_key=public_key,
        agent_name=key.agent_name,
        agent_head=(key.agent_key, key.agent_head_seq, key.agent_head_hash),
    )


async def _by_session(request: Request, state: AppState, token: str) -> Caller:
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    Session.id,
                    Session.user_id,
                    Session.org_id,
                    Session.expires_ns,
                    Session.revoked_ns,
                    User.email,
                    User.role,
                )
                .join(User, User.id == Session.user_id)
                .where(Session.token_hash == secret_hash(token))
            )
        ).first()
    if row is None or row.revoked_ns is not None or row.expires_ns <= now_ns():
        raise ApiError(401, "session_invalid", "the session expired or was ended: log in again")
    if request.method in _UNSAFE:
        _check_origin(request, state)
    return Caller(row.org_id, "user", row.user_id, row.email, role=row.role, session_id=row.id)


def _check_origin(request: Request, state: AppState) -> None:
    """Cookie-authenticated writes from another site's page are refused (CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-site request (browsers send Origin with every cross-origin write)
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != own and origin not in state.settings.cors_origins:
        raise ApiError(403, "csrf_refused", f"requests from {origin} may not use this session")
