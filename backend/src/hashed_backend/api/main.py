"""All routers, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from hashed_backend.api.routes import agents, approvals, auth, health, keys, logs, policies, transparency, users
from hashed_backend.schemas.common import ErrorOut

__all__ = ["api_router"]

_ERRORS = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "Malformed request (e.g. `malformed_json`).",
        401: "Not authenticated; `error.code` says why.",
        403: "Authenticated, but not allowed.",
        404: "Not found in the caller's organisation.",
        409: "Conflicts with the current state.",
        413: "Body too large.",
        422: "Invalid fields (`invalid_request`, `policy_invalid`).",
        429: "Rate limited; see Retry-After.",
    }.items()
}

api_router = APIRouter(responses=_ERRORS)  # type: ignore[arg-type]
for module in (health, auth, users, keys, agents, logs, policies, approvals, transparency):
    api_router.include_router(module.router)
