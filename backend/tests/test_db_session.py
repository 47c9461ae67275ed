"""Database: run_write (a write transaction on the writer thread), run_one, bulk_insert, execute_all, reads."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashed_backend.db.migrate import upgrade
from hashed_backend.db.models import RequestNonce
from hashed_backend.db.session import Database, bulk_insert, execute_all
from hashed_backend.settings import async_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'session.db'}"


def remember(conn, *nonces, fail=False):
    for nonce in nonces:
        conn.execute(insert(RequestNonce).values(public_key="k" * 64, nonce=nonce, expires_ns=1))
    if fail:
        raise RuntimeError("the caller gave up")
    return len(nonces)


def test_run_write_commits_what_it_returns_from_and_rolls_back_what_raises(database_url):
    async def scenario():
        db = Database(async_url(database_url))
        try:
            await upgrade(db)
            assert await db.run_write(remember, "n" * 16, "m" * 16) == 2
            with pytest.raises(RuntimeError):
                await db.run_write(remember, "o" * 16, fail=True)
            with pytest.raises(IntegrityError):
                await db.run_write(remember, "p" * 16, "n" * 16)  # the second is a duplicate: neither is kept
            # Writes through the async engine and the writer see each other at once.
            async with db.write() as conn:
                await conn.execute(insert(RequestNonce).values(public_key="k" * 64, nonce="q" * 16, expires_ns=1))
            results = await asyncio.gather(*(db.run_write(remember, f"{i:016d}") for i in range(20)))
            mine = RequestNonce.public_key == "k" * 64  # the PostgreSQL database is shared with other tests
            async with db.read(snapshot=False) as conn:
                rows = await conn.execute(select(RequestNonce.nonce).where(mine).order_by(RequestNonce.nonce))
                nonces = [row.nonce for row in rows]
                count = (await conn.execute(select(func.count()).select_from(RequestNonce).where(mine))).scalar_one()
            return results, nonces, count
        finally:
            await db.dispose()

    results, nonces, count = asyncio.run(scenario())
    assert results == [1] * 20
    assert nonces == sorted([*(f"{i:016d}" for i in range(20)), "m" * 16, "n" * 16, "q" * 16]) and count == 23


def test_bulk_insert_stores_every_row_or_raises_integrity_error_and_keeps_none(database_url):
    table = RequestNonce.__table__
    rows = [{"public_key": "b" * 64, "nonce": f"{i:016d}", "expires_ns": i} for i in range(300)]

    async def scenario():
        db = Database(async_url(database_url))
        try:
            await upgrade(db)
            await db.run_write(bulk_insert, table, rows[:200])
            await db.run_write(bulk_insert, table, [])
            with pytest.raises(IntegrityError):
                await db.run_write(bulk_insert, table, rows[150:])  # 150..199 are there already
            async with db.read() as conn:
                query = select(RequestNonce.nonce, RequestNonce.expires_ns).where(RequestNonce.public_key == "b" * 64)
                stored = (await conn.execute(query)).all()
            return sorted(stored)
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == [(r["nonce"], r["expires_ns"]) for r in rows[:200]]


def test_execute_all_returns_each_row_count_in_order_or_raises_integrity_error_and_keeps_none(database_url):
    add = insert(RequestNonce).values(
        public_key=bindparam("k"), nonce=bindparam("n"), expires_ns=bindparam("e")
    )  # named parameters only: execute_all hands them to the driver as they are
    move = update(RequestNonce).where(RequestNonce.public_key == bindparam("k")).values(expires_ns=bindparam("e"))
    rows = [{"k": "d" * 64, "n": f"{i:016d}", "e": i} for i in range(3)]

    async def scenario():
        db = Database(async_url(database_url))
        try:
            await upgrade(db)
            counts = await db.run_write(
                execute_all, [(add, rows), (move, {"k": "d" * 64, "e": 7}), (move, {"k": "-", "e": 0})]
            )
            with pytest.raises(IntegrityError):
                await db.run_write(execute_all, [(move, {"k": "d" * 64, "e": 8}), (add, rows[2:])])
            async with db.read() as conn:
                kept = (
                    await conn.execute(select(RequestNonce.expires_ns).where(RequestNonce.public_key == "d" * 64))
                ).all()
            return counts, kept
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == ([3, 3, 0], [(7,)] * 3)


def test_run_one_executes_one_statement_on_its_own(database_url):
    statement = insert(RequestNonce)

    async def scenario():
        db = Database(async_url(database_url))
        try:
            await upgrade(db)
            await db.run_one(statement, {"public_key": "c" * 64, "nonce": "r" * 16, "expires_ns": 1})
            with pytest.raises(IntegrityError):
                await db.run_one(statement, {"public_key": "c" * 64, "nonce": "r" * 16, "expires_ns": 2})
            async with db.read() as conn:
                kept = (
                    await conn.execute(select(RequestNonce.expires_ns).where(RequestNonce.public_key == "c" * 64))
                ).all()
            return kept
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == [(1,)]
