"""Migrations: the shipped scripts build exactly the models' schema; `migrate` and the CLI work."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hashed_backend.db.migrate import current_revision, head_revision, upgrade
from hashed_backend.db.models import Base
from hashed_backend.db.session import Database
from hashed_backend.settings import BackendSettings, async_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'migrations.db'}"


def test_migrations_match_the_models(database_url):
    async def check():
        db = Database(async_url(database_url))
        try:
            await upgrade(db)
            await upgrade(db)  # idempotent
            assert await current_revision(db) == head_revision()
            async with db.read() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await db.dispose()

    assert asyncio.run(check()) == []


def test_migrate_command(tmp_path):
    target = tmp_path / "cli.db"
    done = subprocess.run(
        [sys.executable, "-m", "hashed_backend", "migrate", "--database-url", f"sqlite:///{target}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"database at migration {head_revision()}" in done.stdout
    assert target.exists()


def test_default_settings_put_sqlite_in_the_xdg_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("HASHED_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = BackendSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8400)
    assert settings.sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path / 'hashed' / 'backend.db'}"
    monkeypatch.setenv("HASHED_DATABASE_URL", "postgresql://u@h:5432/db")
    assert BackendSettings().sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"


def test_wildcard_cors_with_credentials_is_refused(monkeypatch):
    monkeypatch.setenv("HASHED_BACKEND_CORS_ORIGINS", '["*"]')
    with pytest.raises(ValueError, match="cannot be used"):
        BackendSettings()
