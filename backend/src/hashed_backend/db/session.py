"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite allows one writer at a time. A deferred transaction that reads and then writes can fail at once with
"database is locked" when another connection committed in between (the busy timeout does not help there), so
on SQLite writes go through their own engine: one pooled connection per process and `BEGIN IMMEDIATE`, which
takes the write lock up front and waits for it (busy_timeout). Reads use a second engine and never block
(WAL). On PostgreSQL both are the same engine.

A read whose statements need not see one snapshot (`read(snapshot=False)`), and a write of a single statement
(`write_one`), skip BEGIN and COMMIT: each statement is then atomic on its own (autocommit). On the hot paths
(every signed request, every ingested batch) that saves a round trip to the driver thread or server each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["Database"]

_SNAPSHOT = "hashed_snapshot"  # execution option: False makes the SQLite "begin" listener below issue no BEGIN


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives a killed process
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """The backend's database: `read()` and `write()` transactions on AsyncConnections.

    Args:
        url: an async SQLAlchemy URL (`sqlite+aiosqlite:///…` or `postgresql+psycopg://…`).
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
            self.write_engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
            for engine, begin in ((self.engine, "BEGIN"), (self.write_engine, "BEGIN IMMEDIATE")):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
                event.listen(engine.sync_engine, "begin", _begin_with(begin))
        else:
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=5, pool_pre_ping=True)
            self.write_engine = self.engine

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every distinct engine."""
        return (self.engine,) if self.write_engine is self.engine else (self.engine, self.write_engine)

    @asynccontextmanager
    async def read(self, *, snapshot: bool = True) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (rolled back at the end); `snapshot=False`: each statement reads on its own."""
        async with self.engine.connect() as conn:
            if not snapshot:
                await self._autocommit(conn)
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception."""
        async with self.write_engine.begin() as conn:
            yield conn

    async def write_one(self, statement: Executable, parameters: dict[str, object]) -> int:
        """Execute one writing statement on its own (atomic by itself, committed at once); returns its rowcount."""
        async with self.write_engine.connect() as conn:
            await self._autocommit(conn)
            return (await conn.execute(statement, parameters)).rowcount

    async def _autocommit(self, conn: AsyncConnection) -> None:
        if self.dialect == "sqlite":
            # The connection is in autocommit mode already (`_sqlite_pragmas`); only the explicit BEGIN goes.
            await conn.execution_options(**{_SNAPSHOT: False})
        else:
            await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        for engine in self.engines:
            await engine.dispose()


def _begin_with(statement: str) -> Any:
    def begin(conn: Any) -> None:
        if conn.get_execution_options().get(_SNAPSHOT, True):
            conn.exec_driver_sql(statement)

    return begin
