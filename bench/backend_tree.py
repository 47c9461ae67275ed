"""The backend's Merkle tree on ingest's path (not a test): prints a table.

What appending a batch of 100 records to an agent's tree costs inside the batch's write transaction (services/
tree.py: the tree's rows, the checkpoint signature), on SQLite and PostgreSQL, for a tree that already holds
`--size` leaves. Each sample is one transaction, commit included; the floor is the same transaction with the head
UPDATE alone, measured in the same run. Wall time and the thread's CPU time, median and p99. The transactions run
on the server's own writer engine (`Database.writer_engine`: on SQLite WAL, synchronous=NORMAL, BEGIN IMMEDIATE)
and sign with its own signer (`BackendSigner`), where the checkout has them.

    uv run python bench/backend_tree.py [--size 200000] [--batches 300] [--no-postgres]
    uv run python bench/backend_tree.py --baseline DIR   # also run DIR's backend code (another checkout), same run

PostgreSQL: a throw-away database is created next to $HASHED_TEST_DATABASE_URL and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

BATCH = 100


def measure(url: str, size: int, batches: int) -> dict[str, list[float]]:
    """Samples (µs) of the floor transaction and of the same with the tree appended, alternating."""
    from nacl.signing import SigningKey
    from sqlalchemy import create_engine, text

    from hashed_backend.db import session
    from hashed_backend.db.models import Base
    from hashed_backend.services import tree as tree_module
    from hashed_backend.services.checkpoints import BackendSigner

    if hasattr(session.Database, "run_write"):  # the server's writer engine, its pragmas and BEGIN included
        engine = session.Database(url.replace("sqlite://", "sqlite+aiosqlite://", 1)).writer_engine
    else:  # older checkouts
        engine = create_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_head (id INTEGER PRIMARY KEY, seq BIGINT)"))
        conn.execute(text("INSERT INTO bench_head VALUES (1, 0)"))
    signer = BackendSigner(SigningKey(bytes(32)))

    plan = getattr(tree_module, "plan_tree", None)  # older checkouts (a --baseline) have extend_tree instead
    extend = getattr(tree_module, "extend_tree", None)
    remembers = plan is not None or "state" in inspect.signature(extend).parameters
    head = text("UPDATE bench_head SET seq = seq + :n WHERE id = 1")
    leaf = iter(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(10**9))
    state = None

    def append(count: int, tree: bool) -> float:
        nonlocal state, done
        records = [{"hash": next(leaf).hex()} for _ in range(count)]
        started, cpu = time.perf_counter_ns(), time.thread_time_ns()
        with engine.begin() as conn:
            args = (conn, "org", "agent", done, "ab" * 32, records, signer, 0)
            if plan is not None:  # as ingest does: the head's UPDATE and the tree's statements together
                from hashed_backend.db.session import execute_all

                step = plan(*args, state) if tree else None
                counts = execute_all(conn, [(head, {"n": count if tree else 0}), *(step.steps if step else ())])
                state = tree_module.tree_after(step, counts[1:], "a") if tree else state
            else:
                conn.execute(head, {"n": count if tree else 0})
                if tree:
                    state = extend(*args, state) if remembers else extend(*args)
            done += count if tree else 0
        return (time.perf_counter_ns() - started) / 1e3, (time.thread_time_ns() - cpu) / 1e3

    done = 0
    for start in range(0, size, 10_000):  # the tree's existing leaves, in large batches
        append(min(10_000, size - start), True)
    samples: dict[str, list[float]] = {"floor": [], "floor cpu": [], "tree": [], "tree cpu": []}
    for i in range(batches):
        for name in ("floor", "tree") if i % 2 else ("tree", "floor"):
            wall, cpu = append(BATCH, name == "tree")
            samples[name].append(wall)
            samples[f"{name} cpu"].append(cpu)
    engine.dispose()
    return samples


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'tree-{uuid.uuid4().hex[:6]}.db'}"
        return
    import psycopg

    base = os.environ.get("HASHED_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"hashed_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base.rpartition('/')[0]}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if q < 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--baseline", type=Path, help="another checkout whose backend code to measure too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement, in a process running a given checkout's code
        print(json.dumps(measure(args.child, args.size, args.batches)))
        return
    kinds = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    variants = [("this", None)] + ([("baseline", args.baseline)] if args.baseline else [])
    print("| database | code | floor p50 | with the tree p50 / p99 | tree's wall p50 | tree's CPU p50 |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            for variant, src in variants:
                env = dict(os.environ)
                if src is not None:
                    env["PYTHONPATH"] = f"{src}/backend/src{os.pathsep}{src}/hashed-core/src"
                with database(kind, Path(folder)) as url:
                    command = [sys.executable, __file__, "--child", url, "--size", str(args.size)]
                    out = subprocess.run(
                        [*command, "--batches", str(args.batches)], env=env, check=True, capture_output=True, text=True
                    ).stdout
                s = json.loads(out)
                floor, tree = statistics.median(s["floor"]), statistics.median(s["tree"])
                cpu = statistics.median(s["tree cpu"]) - statistics.median(s["floor cpu"])
                print(
                    f"| {kind} | {variant} | {floor:,.0f} µs | {tree:,.0f} / {p(s['tree'], 99):,.0f} µs "
                    f"| {tree - floor:,.0f} µs | {cpu:,.0f} µs |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
