"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite allows one writer at a time. A deferred transaction that reads and then writes can fail at once with
"database is locked" when another connection committed in between (the busy timeout does not help there), so
on SQLite writes go through their own engine: one pooled connection per process and `BEGIN IMMEDIATE`, which
takes the write lock up front and waits for it (busy_timeout). Reads use a second engine and never block
(WAL). On PostgreSQL both are the same engine.

A read whose statements need not see one snapshot (`read(snapshot=False)`) skips BEGIN and ROLLBACK, and so
does a single writing statement (`run_one`): each statement is then atomic on its own (autocommit), a round
trip to the driver thread or server less each way.

`run_write(fn, ...)` runs a whole write transaction in one piece on a writer thread, with a synchronous
connection, and `run_one` a single statement: the statements follow each other at once instead of each
waiting for a turn of a busy event loop. The hot writes (every signed request's nonce, every ingested batch)
go that way, because on SQLite the write lock is held from BEGIN IMMEDIATE to COMMIT and every other writer
waits for it meanwhile: held across loop turns, it was milliseconds per batch; held by a thread, it is the
time the statements take. The writer uses the same pragmas and `BEGIN IMMEDIATE`, so on SQLite it is one
more writer among the others (busy_timeout); on PostgreSQL it is a small pool of its own. There,
`bulk_insert` stores many rows with one COPY (a third of the client CPU of an executemany, and less of the
server's), and `execute_all` sends a transaction's closing statements in one pipeline: one wait for the server.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Executable, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["Database", "bulk_insert", "execute_all"]

_SNAPSHOT = "hashed_snapshot"  # execution option: False makes the SQLite "begin" listener below issue no BEGIN
_PG_WRITERS = 4
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}  # their synchronous counterparts
P = ParamSpec("P")
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives a killed process
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by this user only: it holds password and key hashes.

    SQLite gives its -wal and -shm files the database file's permissions. An existing file is tightened too.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


class Database:
    """The backend's database: `read()` and `write()` transactions on AsyncConnections, and `run_write`.

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
                _private_file(Path(database).expanduser())
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, hide_parameters=True)
            self.write_engine = create_async_engine(
                url, pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True
            )
            writers = 1
            self.writer_engine = create_engine(
                parsed.set(drivername=_SYNC_DRIVERS["sqlite"]),
                pool_size=writers,
                max_overflow=0,
                hide_parameters=True,
                connect_args={"check_same_thread": False},  # made on the writer thread, closed by `dispose`
            )
            engines = (self.engine.sync_engine, self.write_engine.sync_engine, self.writer_engine)
            for engine, begin in zip(engines, ("BEGIN", "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"), strict=True):
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _begin_with(begin))
        else:
            self.engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=5, pool_pre_ping=True, hide_parameters=True
            )
            self.write_engine = self.engine
            writers = _PG_WRITERS
            self.writer_engine = create_engine(
                parsed.set(drivername=_SYNC_DRIVERS["postgresql"]),
                pool_size=writers,
                max_overflow=0,
                pool_pre_ping=True,
                hide_parameters=True,  # parameters are password and key hashes: never in an error or a log
            )
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="hashed-db-write")

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

    async def run_write(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(conn, *args, **kwargs)` in one write transaction on a writer thread, committed when it returns.

        `fn` is synchronous and must only run statements: it holds the transaction (on SQLite, the database's
        write lock) while it runs. An exception rolls the transaction back and is raised here.
        """
        return await asyncio.get_running_loop().run_in_executor(
            self._writers, functools.partial(self._write_now, fn, *args, **kwargs)
        )

    async def run_one(self, statement: Executable, parameters: Mapping[str, Any]) -> None:
        """Execute one writing statement on a writer thread, atomic on its own (no BEGIN/COMMIT)."""
        return await asyncio.get_running_loop().run_in_executor(self._writers, self._one_now, statement, parameters)

    def _write_now(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.writer_engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def _one_now(self, statement: Executable, parameters: Mapping[str, Any]) -> None:
        with self.writer_engine.connect() as conn:
            conn.execution_options(**self._autocommit_options).execute(statement, parameters)

    @property
    def _autocommit_options(self) -> dict[str, Any]:
        # SQLite connections are in autocommit mode already (`_sqlite_pragmas`): only the explicit BEGIN goes.
        return {_SNAPSHOT: False} if self.dialect == "sqlite" else {"isolation_level": "AUTOCOMMIT"}

    async def _autocommit(self, conn: AsyncConnection) -> None:
        await conn.execution_options(**self._autocommit_options)

    async def dispose(self) -> None:
        """Close every pooled connection and stop the writer threads."""
        for engine in self.engines:
            await engine.dispose()
        await asyncio.get_running_loop().run_in_executor(self._writers, self.writer_engine.dispose)
        self._writers.shutdown()


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, in the same order) in `conn`'s transaction, the fastest way.

    PostgreSQL: one COPY. Elsewhere: the driver's executemany on plain tuples (SQLAlchemy's per-row parameter
    processing is most of an executemany's cost). A unique violation raises `sqlalchemy.exc.IntegrityError`.
    """
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in rows[0])
    driver: Any = conn.connection.driver_connection
    dbapi = conn.dialect.loaded_dbapi
    try:
        if conn.dialect.name == "postgresql":
            with driver.cursor() as cursor, cursor.copy(f"COPY {quote(table.name)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
        else:
            marks = ", ".join("?" * len(rows[0]))
            driver.executemany(
                f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})",  # noqa: S608 - names from the model
                [tuple(row.values()) for row in rows],
            )
    except dbapi.IntegrityError as exc:
        raise IntegrityError(f"bulk insert into {table.name}", None, exc) from exc


Step = tuple[Executable, Mapping[str, Any] | Sequence[Mapping[str, Any]]]  # a statement and its parameters (many)


def execute_all(conn: Connection, steps: list[Step]) -> list[int]:
    """Execute `steps` in order in `conn`'s transaction; returns each one's row count.

    Straight through the driver, each statement compiled once (its parameters all named `bindparam`s, passed as
    they are: no SQLAlchemy type processing). PostgreSQL: in one round trip (psycopg's pipeline mode), so a
    write transaction's closing statements cost the writer one wait for the server instead of one each.
    SQLite: one after the other, without SQLAlchemy's ≈ 25 µs of work per execution. A unique violation raises
    `sqlalchemy.exc.IntegrityError`.
    """
    driver: Any = conn.connection.driver_connection
    try:
        if conn.dialect.name != "postgresql":
            return [_run_positional(driver, conn.dialect, statement, params) for statement, params in steps]
        compiled = [(_compiled(conn, statement), params) for statement, params in steps]
        cursors = [driver.cursor() for _ in steps]
        try:
            with driver.pipeline():
                for cursor, (sql, params) in zip(cursors, compiled, strict=True):
                    if isinstance(params, Mapping):
                        cursor.execute(sql, params)
                    else:
                        cursor.executemany(sql, params)
            return [cursor.rowcount for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
    except conn.dialect.loaded_dbapi.IntegrityError as exc:
        raise IntegrityError("execute_all", None, exc) from exc


def _run_positional(driver: Any, dialect: Any, statement: Executable, params: Any) -> int:
    """One step through a qmark driver (sqlite3): its row count."""
    sql, names = _positional(statement, dialect)
    if isinstance(params, Mapping):
        return int(driver.execute(sql, [params[name] for name in names]).rowcount)
    return int(driver.executemany(sql, [[row[name] for name in names] for row in params]).rowcount)


@functools.lru_cache(maxsize=64)  # module-level statements only: a handful
def _pyformat(statement: Executable, dialect: Any) -> str:
    return str(cast(ClauseElement, statement).compile(dialect=dialect))


@functools.lru_cache(maxsize=64)  # the same
def _positional(statement: Executable, dialect: Any) -> tuple[str, tuple[str, ...]]:
    compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
    return str(compiled), tuple(compiled.positiontup or ())


def _compiled(conn: Connection, statement: Executable) -> str:
    """The statement's SQL for the driver itself (`%(name)s` parameters), compiled once per statement."""
    return _pyformat(statement, conn.dialect)


def _begin_with(statement: str) -> Any:
    def begin(conn: Any) -> None:
        if conn.get_execution_options().get(_SNAPSHOT, True):
            conn.exec_driver_sql(statement)

    return begin
