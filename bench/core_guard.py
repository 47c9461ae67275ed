"""Core benchmark: what guarding a call costs, against a bare call and against the best-known peer.

    ./dev test -s bench          (or: uv run --group bench python bench/core_guard.py)

Prints a markdown table of medians and p99s measured in this one run (the machine is shared and noisy, so
only same-run comparisons mean anything). Targets are from issue #2.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hashed import Hashed
from hashed.ledger import read_ledger, verify_records
from hashed.policy import PolicyEngine, parse_policy
from hashed.testing import make_hashed

POLICY = """
version: 1
default: deny
rules:
  - {id: small-transfers, tools: [transfer_money], effect: allow, limits: {amount: {max: 1000}}}
  - {id: never-delete, tools: ["delete_*"], effect: deny}
"""
WINDOWED = POLICY.replace(
    "limits: {amount: {max: 1000}}",
    "limits: {amount: {max: 1000, window: {per: 1d, max_sum: 1.0e12}}}, rate: {per: 1h, max_calls: 100000000}",
)
ROUNDS, BLOCK = 20, 1000


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def timings(fn: Callable[[], Any], n: int) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        fn()
        out.append(clock() - start)
    return out


def added_latency(hashed: Hashed) -> tuple[float, float, float, float]:
    """(bare p50, added p50, added p99, guarded p99) in µs, bare and guarded interleaved in blocks."""

    def transfer_money(to: str, amount: float) -> str:
        return "sent"

    guarded = hashed.guard("transfer_money")(transfer_money)
    bare_t: list[int] = []
    guarded_t: list[int] = []
    timings(lambda: guarded("acct-9", 50), 500)  # warm up
    gc.disable()
    try:
        for _ in range(ROUNDS):
            bare_t += timings(lambda: transfer_money("acct-9", 50), BLOCK)
            guarded_t += timings(lambda: guarded("acct-9", 50), BLOCK)
    finally:
        gc.enable()
    hashed.flush()
    bare50, bare99 = percentile(bare_t, 0.5), percentile(bare_t, 0.99)
    return (
        bare50,
        percentile(guarded_t, 0.5) - bare50,
        percentile(guarded_t, 0.99) - bare99,
        percentile(guarded_t, 0.99),
    )


def after_quiet(hashed: Hashed, calls: int = 15, quiet: float = 1.2) -> tuple[float, float]:
    """(bare p50, guarded p50) in µs of a call after `quiet` seconds without any: how a model-paced agent calls.

    Between tool calls a real agent waits a second or more for its model; by then the CPU's caches hold other
    work and the ledger's writer sleeps (the call wakes it). A tight loop hides both. Bare and guarded calls
    alternate, each after its own quiet spell.
    """

    def transfer_money(to: str, amount: float) -> str:
        return "sent"

    guarded = hashed.guard("transfer_money")(transfer_money)
    guarded("acct-9", 50)
    bare_t: list[int] = []
    guarded_t: list[int] = []
    for _ in range(calls):
        for fn, out in ((transfer_money, bare_t), (guarded, guarded_t)):
            time.sleep(quiet)
            start = time.perf_counter_ns()
            fn("acct-9", 50)
            out.append(time.perf_counter_ns() - start)
    return percentile(bare_t, 0.5), percentile(guarded_t, 0.5)


def sustained(hashed: Hashed, n: int) -> float:
    """Guarded calls per second on one thread, counting until every record is committed and signed."""
    guarded = hashed.guard("transfer_money")(lambda to, amount: "sent")
    start = time.perf_counter()
    for _ in range(n):
        guarded("acct-9", 50)
    hashed.flush()
    return n / (time.perf_counter() - start)


def threaded_rate(hashed: Hashed, threads: int, per_thread: int) -> float:
    """Guarded calls per second from `threads` threads at once, counting until every record is committed and signed.

    With `ledger_sync = "full"` each commit waits for an fsync; callers that commit at the same moment share one.
    """
    guarded = hashed.guard("transfer_money")(lambda to, amount: "sent")

    def calls() -> None:
        for _ in range(per_thread):
            guarded("acct-9", 50)

    workers = [threading.Thread(target=calls) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    hashed.flush()
    return threads * per_thread / (time.perf_counter() - start)


def policy_eval_1000() -> float:
    rules = "\n".join(
        f"  - {{id: r{i}, tools: [tool_{i}], effect: allow, limits: {{amount: {{max: 1000}}}}}}" for i in range(1000)
    )
    engine = PolicyEngine(parse_policy(f"default: deny\nrules:\n{rules}\n"))
    args = {"to": "acct-9", "amount": 50}
    engine.evaluate("bot", "tool_500", args)
    return percentile(timings(lambda: engine.evaluate("bot", "tool_500", args), 50_000), 0.5)


def verify_rate(home: Path) -> tuple[int, float]:
    records = list(read_ledger(home / "ledger.db"))
    start = time.perf_counter()
    report = verify_records(records)
    elapsed = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"bench ledger does not verify: {report.error}")
    return len(records), len(records) / elapsed


def peer() -> tuple[float, float] | None:
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from peer_agt import build_peer
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            decide = build_peer(tmp)
        except ImportError:
            return None
        timings(lambda: decide("transfer_money", {"to": "acct-9", "amount": 50}), 1000)
        values = timings(lambda: decide("transfer_money", {"to": "acct-9", "amount": 50}), ROUNDS * BLOCK)
    return percentile(values, 0.5), percentile(values, 0.99)


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with make_hashed(root / "durable", policy=POLICY, raise_internal_errors=False) as hashed:
            bare, d50, d99, _ = added_latency(hashed)
            durable_rate = sustained(hashed, 50_000)
            quiet_bare, quiet_guarded = after_quiet(hashed)
        rows.append(("bare call (baseline)", f"{bare:.2f}", "", ""))
        rows.append(("durable: added latency per guarded call", f"{d50:.1f}", f"{d99:.1f}", "p50 ≤ 60, p99 ≤ 250"))
        rows.append(("durable: a call after 1.2 s without any (bare p50, then added)", f"{quiet_bare:.1f}", "", ""))
        rows.append(("  ... added by the guard after 1.2 s without calls", f"{quiet_guarded - quiet_bare:.1f}", "", ""))
        with make_hashed(root / "windows", policy=WINDOWED, raise_internal_errors=False) as hashed:
            _, w50, w99, _ = added_latency(hashed)
        rows.append(("durable + rate and sum windows: added", f"{w50:.1f}", f"{w99:.1f}", ""))
        rows.append(("durable: sustained, all signed (calls/s)", f"{durable_rate:,.0f}", "", ""))
        with make_hashed(root / "immediate", policy=POLICY, durability="immediate", raise_internal_errors=False) as h:
            _, i50, i99, _ = added_latency(h)
            immediate_rate = sustained(h, 20_000)
        rows.append(("immediate (SQLite commit per record): added", f"{i50:.1f}", f"{i99:.1f}", "(durable's safety)"))
        rows.append(("immediate: sustained, all signed (calls/s)", f"{immediate_rate:,.0f}", "", ""))
        with make_hashed(root / "full", policy=POLICY, ledger_sync="full", raise_internal_errors=False) as h:
            full_one = sustained(h, 2_000)
            full_eight = threaded_rate(h, 8, 300)
        rows.append(("ledger_sync=full (fsync per commit): one thread (calls/s)", f"{full_one:,.0f}", "", ""))
        rows.append(("ledger_sync=full: 8 threads, commits shared (calls/s)", f"{full_eight:,.0f}", "", ""))
        with make_hashed(root / "bg", policy=POLICY, durability="background", raise_internal_errors=False) as hashed:
            _, b50, b99, _ = added_latency(hashed)
            bg_rate = sustained(hashed, 100_000)
        rows.append(("background: added latency in the caller", f"{b50:.1f}", f"{b99:.1f}", "p50 ≤ 10"))
        rows.append(("background: sustained, all signed (calls/s)", f"{bg_rate:,.0f}", "", "≥ 15,000"))
        rows.append(("policy evaluation, 1,000 rules", f"{policy_eval_1000():.2f}", "", "p50 ≤ 20"))
        count, rate = verify_rate(root / "bg")
        rows.append((f"verify ({count:,} records, 1 core): records/s", f"{rate:,.0f}", "", "≥ 8,000"))
    peer_result = peer()
    if peer_result is not None:
        p50, p99 = peer_result
        rows.append(
            ("peer: agent-governance-toolkit 4.1.0 govern() + signed file audit", f"{p50:.1f}", f"{p99:.1f}", "")
        )
        rows.append(("ratio: Hashed durable added p50 / peer p50", f"{d50 / p50:.2f}×", "", "≤ 0.6×"))
    else:
        rows.append(("peer: agent-governance-toolkit not installed (uv sync --group bench)", "", "", ""))
    print(f"\nHashed core benchmark — Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| measure | median (µs, or as named) | p99 (µs) | target |")
    print("|---|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n(statistics: {ROUNDS}×{BLOCK} interleaved calls per latency row; python {statistics.__name__})")


if __name__ == "__main__":
    main()
