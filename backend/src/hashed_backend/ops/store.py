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

from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url

from hashed_backend.settings import BackendSettings

__all__ = ["connect", "libpq_url", "sqlite_path", "sync_url"]


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
def connect(url: str) -> Iterator[Connection]:
    """One connection to the database at `url` (async or sync form), closed with its engine at the end."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
