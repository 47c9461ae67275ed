"""Transparency benchmark: Merkle proofs in a 1,000,000-record tree kept in SQLite, and the cost of keeping it.

    uv run python bench/transparency.py [--leaves 1000000]

Prints a markdown table of medians (and p99s) measured in this one run. The machine is shared with other
work and noisy: compare rows of the same run, not runs. Targets are from issue #22: an inclusion proof in a
1,000,000-record tree ≤ 1 ms p50 to produce and ≤ 0.2 ms to verify. Append costs are per leaf, inside the
writer's open transaction (the commit is the records' own), to be weighed against the durable guarded call.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nacl.signing

from hashed.ledger._tree_store import SqliteTreeStore
from hashed.protocol import verify_consistency, verify_inclusion

RUNS = 2000


def timed(fn: Callable[[], object], runs: int = RUNS) -> list[float]:
    """Microseconds per call, one sample per call."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def row(name: str, samples: list[float], target: str = "") -> str:
    p50 = statistics.median(samples)
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1]
    return f"| {name} | {p50:,.1f} | {p99:,.1f} | {target} |"


def leaves(start: int, stop: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00record %d" % i).digest() for i in range(start, stop)]


def build(path: Path, count: int, group: int) -> tuple[sqlite3.Connection, SqliteTreeStore, list[float]]:
    """A tree of `count` leaves appended in groups, one transaction each; µs per leaf for every group."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    tree = SqliteTreeStore(conn)
    per_leaf = []
    for start in range(0, count, group):
        batch = leaves(start, min(start + group, count))
        conn.execute("BEGIN")
        began = time.perf_counter_ns()
        tree.append(batch)
        per_leaf.append((time.perf_counter_ns() - began) / 1000 / len(batch))
        conn.execute("COMMIT")
    return conn, tree, per_leaf


def append_cost(conn: sqlite3.Connection, tree: SqliteTreeStore, group: int, groups: int) -> list[float]:
    """µs per leaf of `tree.append` for groups of `group` leaves on top of the big tree."""
    per_leaf = []
    base = tree.size
    for number in range(groups):
        batch = leaves(base + number * group, base + (number + 1) * group)
        conn.execute("BEGIN")
        began = time.perf_counter_ns()
        tree.append(batch)
        per_leaf.append((time.perf_counter_ns() - began) / 1000 / group)
        conn.execute("COMMIT")
    return per_leaf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    count = parser.parse_args().leaves
    rng = random.Random(22)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        conn, tree, built = build(Path(tmp) / "tree.db", count, 4096)
        build_seconds = time.perf_counter() - began
        size = tree.size
        pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        root = tree.root()
        indexes = [rng.randrange(size) for _ in range(RUNS)]
        leaf_of = dict(zip(indexes, (leaves(i, i + 1)[0] for i in indexes), strict=False))
        proofs = {i: tree.inclusion_proof(i, size) for i in indexes}
        picks = iter(indexes * 3)
        produce = timed(lambda: tree.inclusion_proof(next(picks), size))
        picks = iter(indexes * 3)

        def check() -> None:
            index = next(picks)
            verify_inclusion(leaf_of[index], index, size, proofs[index], root)

        verify = timed(check)
        olds = [rng.randrange(1, size) for _ in range(RUNS)]
        old_roots = {m: tree.root_at(m) for m in olds}
        cons = {m: tree.consistency_proof(m, size) for m in olds}
        picks = iter(olds * 3)
        cons_produce = timed(lambda: tree.consistency_proof(next(picks), size))
        picks = iter(olds * 3)

        def check_consistency() -> None:
            m = next(picks)
            verify_consistency(m, size, old_roots[m], root, cons[m])

        cons_verify = timed(check_consistency)
        groups_32 = append_cost(conn, tree, 32, 500)
        groups_4096 = append_cost(conn, tree, 4096, 20)
        key = nacl.signing.SigningKey(bytes(32))
        sign = timed(lambda: key.sign(b"hashed.record.v1\n" + bytes(32)))
        lookup = timed(
            lambda: conn.execute("SELECT hash FROM merkle_nodes WHERE level = 0 AND idx = ?", (7,)).fetchone()
        )
        conn.close()
    print(
        f"Tree of {size:,} leaves in SQLite (WAL), built in {build_seconds:.1f} s; {pages / size:.0f} bytes per leaf."
    )
    print("Shared, noisy 2-core machine: compare rows of this run only.\n")
    print("| operation | p50 µs | p99 µs | target |")
    print("|---|---:|---:|---|")
    print(row(f"inclusion proof, produce (1 of {size:,})", produce, "≤ 1,000 µs p50"))
    print(row("inclusion proof, verify", verify, "≤ 200 µs p50"))
    print(row(f"consistency proof to {size:,}, produce", cons_produce))
    print(row("consistency proof, verify", cons_verify))
    print(row("append, per leaf, groups of 32", groups_32, "vs ≈ 40 µs durable guarded call"))
    print(row("append, per leaf, groups of 4096", groups_4096))
    print(row("append, per leaf, groups of 4096 (building the tree)", built))
    print(row("baseline: Ed25519 sign (one record's signature)", sign))
    print(row("baseline: SQLite primary-key lookup", lookup))


if __name__ == "__main__":
    main()
