"""Deployment and operations tests: real agents, real backend processes, real PostgreSQL, real nginx.

PostgreSQL tests read HASHED_TEST_DATABASE_URL and make throw-away databases (and, for the deployed layout, a
throw-away role); each is dropped afterwards. Helpers are in `_support.py`, which the tests import.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `_support`
from _support import admin_url


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    base = admin_url()
    name = f"hashed_ops_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
