"""What routes depend on: the app's shared objects and who is calling.

Three kinds of caller, each resolved from the request alone (nothing is remembered between requests):

- a person, by the `hashed_session` cookie (a session row in the database);
- an admin key, by `Authorization: Bearer hashed_admin_…`;
- an agent, by `Authorization: Bearer hashed_agent_…` plus a signed request (see `hashed_backend.signing`).

Route signatures say which callers they accept: `Admin` (a person or an admin key), `Writer` (an `Admin` who is
not a viewer: every change goes through it), `Agent` (a registered, enabled agent with a valid request
signature), `AdminOrAgent`, `AgentKey` (an agent key, unsigned: only for registration) and `Shipper` (signed,
but the key may be unknown: its records are quarantined).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import nacl.signing
from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from hashed.protocol import HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP
from hashed_backend.auth import SESSION_COOKIE, Caller, authenticate
from hashed_backend.db.session import Database
from hashed_backend.errors import ApiError
from hashed_backend.ratelimit import RateLimiter
from hashed_backend.services.checkpoints import BackendSigner
from hashed_backend.settings import BackendSettings

__all__ = [
    "Admin",
    "AdminOrAgent",
    "Agent",
    "AgentKey",
    "AppState",
    "AuthRateLimit",
    "Caller",
    "Shipper",
    "State",
    "Writer",
]


@dataclasses.dataclass
class AppState:
    """Objects shared by all requests of one process (no request's outcome depends on them but the limiter)."""

    settings: BackendSettings
    db: Database
    limiter: RateLimiter
    backend_key: nacl.signing.SigningKey
    verify_pool: ThreadPoolExecutor

    @functools.cached_property
    def checkpoint_signer(self) -> BackendSigner:
        """The backend key as the signer of checkpoints (`services/checkpoints.py`)."""
        return BackendSigner(self.backend_key)

    @property
    def backend_public_key(self) -> str:
        """The backend key's public half, hex."""
        return self.backend_key.verify_key.encode().hex()


async def _state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on its thread pool, a thread hop on every request.
    state: AppState = request.app.state.hashed
    return state


State = Annotated[AppState, Depends(_state)]

# Declared for the OpenAPI document (security schemes and the signature headers); `authenticate` reads them.
_bearer = HTTPBearer(auto_error=False, description="An admin key (hashed_admin_…) or an agent key (hashed_agent_…).")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="A person's session (POST /v1/auth/login).")


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
SessionCookie = Annotated[str | None, Security(_cookie)]


async def _signature_headers(
    key: Annotated[str | None, Header(alias=HEADER_KEY, description="Agent public key, hex.")] = None,
    timestamp: Annotated[str | None, Header(alias=HEADER_TIMESTAMP, description="Unix seconds.")] = None,
    nonce: Annotated[str | None, Header(alias=HEADER_NONCE, description="16-64 of [A-Za-z0-9_-].")] = None,
    signature: Annotated[str | None, Header(alias=HEADER_SIGNATURE, description="Ed25519, hex.")] = None,
) -> None:
    """Documents the signed-request headers in the OpenAPI document; `authenticate` checks them."""


SignatureHeaders = Annotated[None, Depends(_signature_headers)]
CallerDependency = Callable[..., Coroutine[Any, Any, Caller]]


def _caller(*, kinds: frozenset[str], signed: bool = True, registered: bool = True) -> CallerDependency:
    async def resolve(request: Request, state: AppState) -> Caller:
        caller = await authenticate(request, state, signed=signed, registered=registered, agents="agent" in kinds)
        if caller.kind not in kinds:
            who = "an agent" if caller.kind == "agent" else "an admin"
            raise ApiError(403, "forbidden", f"{who} cannot call this endpoint")
        return caller

    if not signed:

        async def unsigned(request: Request, state: State, _b: BearerCredentials, _s: SessionCookie) -> Caller:
            return await resolve(request, state)

        return unsigned

    async def dependency(
        request: Request, state: State, _b: BearerCredentials, _s: SessionCookie, _h: SignatureHeaders
    ) -> Caller:
        return await resolve(request, state)

    return dependency


_ADMIN = frozenset({"user", "admin_key"})
_AGENT = frozenset({"agent"})
Admin = Annotated[Caller, Depends(_caller(kinds=_ADMIN))]


async def _writer(caller: Admin) -> Caller:
    """An admin who may change things: a viewer reads only (no policy writes, approvals, keys, people)."""
    if caller.role == "viewer":
        raise ApiError(403, "viewer_read_only", "a viewer can read but not change anything; ask an admin or owner")
    return caller


Writer = Annotated[Caller, Depends(_writer)]
Agent = Annotated[Caller, Depends(_caller(kinds=_AGENT))]
AdminOrAgent = Annotated[Caller, Depends(_caller(kinds=_ADMIN | _AGENT))]
AgentKey = Annotated[Caller, Depends(_caller(kinds=_AGENT, signed=False))]
Shipper = Annotated[Caller, Depends(_caller(kinds=_AGENT, registered=False))]


async def _auth_rate_limit(request: Request, state: State) -> None:
    """Per-IP limit on sign-up and log-in (password guessing).

    Not on agent registration: it needs a valid agent key, so it counts against that key like any other request,
    and a fleet restarting behind one address is not throttled as one client.
    """
    client = request.client.host if request.client else "unknown"
    s = state.settings
    wait = state.limiter.hit(f"ip:{client}", rate=s.auth_rate_per_ip, burst=s.auth_burst_per_ip)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"too many authentication requests from {client}; retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )


AuthRateLimit = Depends(_auth_rate_limit)
