"""Applying the shipped Alembic migrations, and telling whether a database is current.

Several replicas may start at once against one PostgreSQL: the upgrade runs under an advisory lock, so one
applies the migrations and the others find them applied. On SQLite, `BEGIN IMMEDIATE` does the same.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from hashed_backend.db.session import Database

__all__ = ["current_revision", "head_revision", "upgrade"]

_LOCK_ID = 0x4A5EED  # arbitrary, fixed: the advisory lock that serialises migrations


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "hashed_backend:migrations")
    return config


def head_revision() -> str | None:
    """The newest revision shipped in this package."""
    return ScriptDirectory.from_config(_config()).get_current_head()


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest)."""
    config = _config()

    def run(sync_conn: Any) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, revision)

    async with db.write_engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        await conn.run_sync(run)
        await conn.commit()


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (None before the first migration)."""

    def read(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.read() as conn:
        return await conn.run_sync(read)
