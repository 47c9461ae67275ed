"""A synchronous connection to the backend's database, for the operations commands (no server, no event loop).

Example:
    >>> sync_url("sqlite+aiosqlite:////tmp/b.db"), sync_url("postgresql+psycopg://u@h/db")
    ('sqlite:////tmp/b.db', 'postgresql+psycopg://u@h/db')
    >>> libpq_url("postgresql+psycopg://u:p@h:5432/db")
    'postgresql://u:p@h:5432/db'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.engine import make_url

from hashed_backend.settings import BackendSettings

__all__ = ["NoStoreError", "connect", "libpq_url", "sqlite_path", "sync_url"]


class NoStoreError(RuntimeError):
    """The database holds no Hashed store (wrong URL or folder, or never migrated)."""


def sync_url(url: str) -> str:
    """The synchronous driver's URL for the async one in the settings (psycopg 3 serves both)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The URL as pg_dump, pg_restore and psql take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(settings: BackendSettings) -> Path | None:
    """The SQLite file of the settings, or None on PostgreSQL."""
    parsed = make_url(settings.sqlalchemy_url)
    return Path(parsed.database or "") if parsed.get_backend_name() == "sqlite" else None


@contextlib.contextmanager
def connect(url: str, *, store: bool = True) -> Iterator[Connection]:
    """One connection to the database at `url` (async or sync form), closed with its engine at the end.

    Raises:
        NoStoreError: `store` is True and the database has no Hashed tables (a SQLite file is never created).
    """
    parsed = make_url(url)
    if store and parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        raise NoStoreError(f"no database at {parsed.database}: check --data-dir or HASHED_BACKEND_DATA_DIR")
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            if store and not inspect(conn).has_table("agents"):
                raise NoStoreError("this database has no Hashed tables: check the URL, or run hashed backend migrate")
            conn.rollback()  # the caller starts its own transaction (a backup sets its isolation level first)
            yield conn
    finally:
        engine.dispose()
