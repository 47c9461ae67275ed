"""Liveness, readiness and the backend's public key."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.responses import Response

from hashed.protocol import APPROVAL_CONTEXT
from hashed_backend.db.migrate import current_revision, head_revision
from hashed_backend.deps import State
from hashed_backend.errors import error_response
from hashed_backend.schemas.approvals import BackendKeyOut

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: database reachable and migrations current", response_model=None)
async def ready(state: State) -> dict[str, str] | Response:
    """200 when the database answers and is at the newest migration; 503 `not_ready` otherwise."""
    try:
        async with state.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        revision = await current_revision(state.db)
    except Exception as exc:  # noqa: BLE001 - any database failure means "not ready", with its reason
        return error_response(503, "not_ready", f"the database is not reachable: {type(exc).__name__}")
    head = head_revision()
    if revision != head:
        return error_response(503, "not_ready", f"database at migration {revision}, this release needs {head}")
    return {"status": "ready", "revision": revision or ""}


@router.get("/v1/backend-key", response_model=BackendKeyOut, tags=["approvals"])
async def backend_key(state: State) -> BackendKeyOut:
    """The Ed25519 key approval answers and checkpoints are signed with (no authentication needed)."""
    return BackendKeyOut(
        public_key=state.backend_public_key,
        approval_context=APPROVAL_CONTEXT.decode().strip(),
        checkpoint_key=state.checkpoint_signer.verifier.vkey,
    )
