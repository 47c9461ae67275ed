"""The backend's signing key is encrypted at rest by default, re-encrypted when the operator supplies a secret
later or rotates it, and the SQLite database is readable by its owner only (issue #15)."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid

import httpx
import pytest

from hashed_backend.testing import LocalBackend


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request, tmp_path):
    """A database no server has used: (url or None for SQLite, a function that reads the stored key row)."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "backend.db"

        def row_sqlite():
            with sqlite3.connect(path) as conn:
                return conn.execute("SELECT seed, encrypted FROM backend_keys").fetchone()

        def set_sqlite(seed, encrypted):
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE backend_keys SET seed = ?, encrypted = ?", (seed, encrypted))

        yield None, row_sqlite, set_sqlite
        return
    base = os.environ.get("HASHED_TEST_DATABASE_URL")
    if not base:
        pytest.skip("HASHED_TEST_DATABASE_URL is not set: PostgreSQL tests need a server (CI sets it)")
    import psycopg

    name = f"hashed_key_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{base.rpartition('/')[0]}/{name}"

    def row_pg():
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT seed, encrypted FROM backend_keys").fetchone()

    def set_pg(seed, encrypted):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE backend_keys SET seed = %s, encrypted = %s", (seed, encrypted))

    try:
        yield url, row_pg, set_pg
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def public_key(backend):
    return httpx.get(f"{backend.url}/v1/backend-key", timeout=10).json()["public_key"]


def test_backend_key_is_encrypted_at_rest_by_default_and_follows_the_operators_secret(tmp_path, fresh_db):
    url, stored, overwrite = fresh_db
    with LocalBackend(tmp_path, database_url=url) as backend:
        first = public_key(backend)
    # By default: under a key file the backend made, readable by its owner only, as is the SQLite database.
    key_file = tmp_path / "data" / "backend-secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    under_file, encrypted = stored()
    assert encrypted and ":" in under_file and len(under_file) > 64
    if url is None:
        for name in ("backend.db", "backend.db-wal", "backend.db-shm"):
            path = tmp_path / "data" / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700

    # A key an older release stored in clear is encrypted at the next start.
    overwrite("11" * 32, False)
    with LocalBackend(tmp_path, database_url=url) as backend:
        legacy = public_key(backend)
    assert legacy != first
    seed, encrypted = stored()
    assert encrypted and "11" * 32 not in seed

    # The operator sets a secret later: the key is re-encrypted under it, and the key file is no longer needed.
    with LocalBackend(tmp_path, database_url=url, env={"HASHED_BACKEND_SECRET_KEY": "first secret"}) as backend:
        assert public_key(backend) == legacy
    assert stored()[0] != seed
    key_file.unlink()

    # Another secret alone cannot open it; with the old one named, the key is re-encrypted under the new one.
    wrong = LocalBackend(tmp_path, database_url=url, env={"HASHED_BACKEND_SECRET_KEY": "second secret"})
    with pytest.raises(RuntimeError, match="does not open the stored backend key"):
        wrong.start(timeout=60)
    last = wrong.logs().strip().splitlines()[-1]  # one line, no traceback (issue #15, start-up errors)
    assert last.startswith("hashed backend: HASHED_BACKEND_SECRET_KEY does not open") and wrong.process.returncode == 2
    rotating = {"HASHED_BACKEND_SECRET_KEY": "second secret", "HASHED_BACKEND_OLD_SECRET_KEY": "first secret"}
    with LocalBackend(tmp_path, database_url=url, env=rotating) as backend:
        assert public_key(backend) == legacy
    with LocalBackend(tmp_path, database_url=url, env={"HASHED_BACKEND_SECRET_KEY": "second secret"}) as backend:
        assert public_key(backend) == legacy
