"""Start-up checks that fail with one clear line instead of a traceback inside a JSON log line (issue #15).

`hashed backend serve` and `migrate` run `check_database` before anything else: an unsupported URL scheme, a
PostgreSQL server that cannot be reached or refuses the credentials, a SQLite folder that cannot be written,
and (serve) a stored backend key that the configured secret does not open: each prints
`hashed backend: <what> (<what to do>)` on stderr and exits with status 2.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from hashed_backend.db.session import Database
from hashed_backend.services.backend_key import BackendKeyError, check_can_open
from hashed_backend.settings import BackendSettings

__all__ = ["StartupError", "check_database"]

_CONNECT_TIMEOUT_S = 10.0


class StartupError(RuntimeError):
    """The backend cannot start; the message is the one line to print."""


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the configured URL"


def check_database(settings: BackendSettings, *, backend_key: bool = True) -> None:
    """Raise `StartupError` unless the configured database URL is supported and the database answers.

    `backend_key`: also check that the configured secret (or key file) opens a stored backend key (serving
    needs it; migrating does not).
    """
    try:
        url = settings.sqlalchemy_url
    except ValueError as exc:
        raise StartupError(f"{exc} (set HASHED_DATABASE_URL)") from None
    shown = _shown(settings.database_url or url)

    async def probe() -> None:
        db = Database(url)
        try:
            async with db.read() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), _CONNECT_TIMEOUT_S)
            if backend_key:
                secret = settings.secret_key.get_secret_value() if settings.secret_key else None
                old = settings.old_secret_key.get_secret_value() if settings.old_secret_key else None
                await check_can_open(db, secret, data_dir=settings.data_dir, old_secret=old)
        finally:
            await db.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), _CONNECT_TIMEOUT_S))
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        raise StartupError(
            f"cannot use the database at {shown}: {first} (is it running and reachable? check HASHED_DATABASE_URL)"
        ) from None
    except (TimeoutError, asyncio.TimeoutError):
        raise StartupError(
            f"the database at {shown} did not answer in {_CONNECT_TIMEOUT_S:g} s (check HASHED_DATABASE_URL)"
        ) from None
    except BackendKeyError as exc:
        raise StartupError(str(exc)) from None
    except (OSError, ArgumentError) as exc:
        raise StartupError(f"cannot use the database at {shown}: {exc}") from None
