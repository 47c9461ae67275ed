"""The FastAPI application: `create_app(settings)`.

On start it opens the database (SQLite in the data folder unless `HASHED_DATABASE_URL` is set), applies the
shipped migrations, loads or makes the backend's Ed25519 key, and starts a housekeeping task that deletes
expired nonces, challenges and sessions. Nothing a request's outcome depends on is kept in memory (the rate
limiter's counters excepted), so any number of replicas can share one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete
from starlette.middleware.cors import CORSMiddleware

from hashed.protocol import HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP
from hashed_backend._version import __version__
from hashed_backend.api.main import api_router
from hashed_backend.credentials import now_ns
from hashed_backend.dashboard import install as install_dashboard
from hashed_backend.db.migrate import upgrade
from hashed_backend.db.models import Challenge, RequestNonce, Session
from hashed_backend.db.session import Database
from hashed_backend.deps import AppState
from hashed_backend.errors import install_error_handlers
from hashed_backend.http_limits import InputGuard, document_unstorable
from hashed_backend.middleware import BodyLimit, ResponseHeaders
from hashed_backend.ratelimit import RateLimiter
from hashed_backend.services.backend_key import load_or_create
from hashed_backend.settings import BackendSettings

__all__ = ["create_app"]

_log = logging.getLogger("hashed_backend")
_HOUSEKEEPING_S = 60.0

_DESCRIPTION = """Collects, verifies and stores the signed ledgers of AI agents; serves their policies;
relays approvals. Agent requests are signed (see docs/api.md, "Signed requests"); every error answers
`{"error": {"code", "message"}}`."""


async def _housekeeping(state: AppState) -> None:
    """Delete what can no longer be used: nonces past the skew window, expired challenges and sessions."""
    while True:
        await asyncio.sleep(_HOUSEKEEPING_S)
        try:
            now = now_ns()
            async with state.db.write() as conn:
                await conn.execute(delete(RequestNonce).where(RequestNonce.expires_ns < now))
                await conn.execute(delete(Challenge).where(Challenge.expires_ns < now))
                await conn.execute(delete(Session).where(Session.expires_ns < now))
        except Exception:  # noqa: BLE001 - housekeeping fails open: logged, retried next round
            _log.exception("housekeeping failed")


def create_app(settings: BackendSettings | None = None) -> FastAPI:
    """The application for `settings` (default: read from the environment)."""
    settings = settings if settings is not None else BackendSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.sqlalchemy_url)
        pool = ThreadPoolExecutor(settings.verify_threads, thread_name_prefix="hashed-verify")
        try:
            if settings.migrate_on_start:
                await upgrade(db)
            secret = settings.secret_key.get_secret_value() if settings.secret_key else None
            old = settings.old_secret_key.get_secret_value() if settings.old_secret_key else None
            key = await load_or_create(db, secret, data_dir=settings.data_dir, old_secret=old)
            state = AppState(settings, db, RateLimiter(), key, pool)
            app.state.hashed = state
            task = asyncio.create_task(_housekeeping(state))
            _log.info("backend ready", extra={"database": db.dialect, "version": __version__})
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            pool.shutdown(wait=False)
            await db.dispose()

    app = FastAPI(
        title="Hashed backend",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_unstorable(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
    install_error_handlers(app)
    app.include_router(api_router)
    install_dashboard(app)  # pages at /, offline /docs and /redoc (docs/dashboard.md)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "If-None-Match",
            "Last-Event-ID",
            HEADER_KEY,
            HEADER_TIMESTAMP,
            HEADER_NONCE,
            HEADER_SIGNATURE,
        ],
        expose_headers=["ETag", "Retry-After", "X-Request-ID"],
        max_age=600,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(InputGuard, max_headers=settings.max_headers)
    app.add_middleware(ResponseHeaders)
    return app
