"""No secret, and no hash of one, reaches a log (issue #15): database errors are logged without their values.

PostgreSQL quotes values in its own messages (`invalid input syntax for type integer: "<value>"`) and SQLAlchemy
appends the statement's parameters to every error; both would put password and key hashes in the logs.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from sqlalchemy import text

from hashed_backend.db.session import Database
from hashed_backend.jsonlog import JsonFormatter
from hashed_backend.settings import async_url

SECRET = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0LXNhbHQ$very-secret-hash"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'backend.db'}"


def failing_statement(dialect):
    if dialect == "postgresql":
        return text("SELECT CAST(:secret AS integer)")  # the server's message quotes the value
    return text("INSERT INTO no_such_table VALUES (:secret)")


def logged_error(database_url):
    async def provoke():
        db = Database(async_url(database_url))
        try:
            async with db.read() as conn:
                await conn.execute(failing_statement(db.dialect), {"secret": SECRET})
        finally:
            await db.dispose()

    try:
        asyncio.run(provoke())
    except Exception:
        exc_info = sys.exc_info()
    else:  # pragma: no cover
        pytest.fail("the statement did not fail")
    record = logging.LogRecord("hashed_backend", logging.ERROR, __file__, 1, "unhandled error", None, exc_info)
    return exc_info[1], JsonFormatter().format(record)


def test_database_errors_never_carry_parameters(database_url):
    exc, line = logged_error(database_url)
    assert SECRET not in str(exc) or "postgresql" in database_url  # PostgreSQL quotes it in its own message
    assert "c2VjcmV0LXNhbHQ" not in line and "very-secret-hash" not in line
    assert "database error" in line and "no_such_table" in line or "CAST" in line  # still says what failed
