"""Bundle and periodic-checkpoint benchmark (#22): what the checkpoint thread costs the guarded call, what one
periodic checkpoint costs, and how fast a bundle is written and verified.

    uv run python bench/bundle.py [--records 20000]

Prints medians measured in this one run; the machine is shared and noisy, so compare rows of the same run only.
The guarded-call rows interleave the settings round by round so that drift hits each alike.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from hashed.identity import Identity
from hashed.ledger._bundle import write_ledger_bundle
from hashed.ledger._checkpoints import sign_ledger_checkpoint
from hashed.ledger._db import Database
from hashed.protocol import verify_bundle
from hashed.testing import FIXED_SEED, make_hashed

ROUNDS, BLOCK = 15, 2000
SETTINGS = {"close only": (0, 0.0), "default (10,000 / 60 s)": (10_000, 60.0), "every 1,000 records": (1_000, 60.0)}


def guarded(root: Path) -> dict[str, list[float]]:
    """µs per durable guarded call, one sample per block of BLOCK calls, for each checkpoint setting."""
    samples: dict[str, list[float]] = {name: [] for name in SETTINGS}
    agents = {}
    for number, (name, (records, seconds)) in enumerate(SETTINGS.items()):
        hashed = make_hashed(root / str(number), checkpoint_records=records, checkpoint_interval=seconds)
        agents[name] = (hashed, hashed.guard("send")(lambda to: "sent"))
    try:
        for _ in range(ROUNDS):
            for name, (_, send) in agents.items():
                start = time.perf_counter_ns()
                for _ in range(BLOCK):
                    send("a@example.com")
                samples[name].append((time.perf_counter_ns() - start) / BLOCK / 1000)
    finally:
        for hashed, _ in agents.values():
            hashed.close()
    return samples


def ledger(root: Path, calls: int) -> Path:
    with make_hashed(root, checkpoint_records=0, checkpoint_interval=0) as hashed:
        send = hashed.guard("send")(lambda to: "sent")
        for _ in range(calls):
            send("a@example.com")
    return root / "ledger.db"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("| durable guarded call, checkpoints | p50 µs per call (blocks of 2,000) |")
        print("|---|---|")
        for name, values in guarded(root / "guarded").items():
            print(f"| {name} | {statistics.median(values):.2f} |")
        path = ledger(root / "agent", args.records // 2)
        db = Database(path)
        try:
            with db.write() as conn:  # the next checkpoint covers every record again: the cost of one period
                conn.execute("DELETE FROM checkpoints")
            start = time.perf_counter()
            sign_ledger_checkpoint(db, Identity.from_seed(FIXED_SEED))
            signed = time.perf_counter() - start
        finally:
            db.close()
        out = io.BytesIO()
        start = time.perf_counter()
        summary = write_ledger_bundle(path, out)
        written = time.perf_counter() - start
        start = time.perf_counter()
        report = verify_bundle(io.BytesIO(out.getvalue()))
        checked = time.perf_counter() - start
        assert report.ok, report.reason
        print()
        print(f"| {summary.records:,} records | seconds | records/s |")
        print("|---|---|---|")
        print(f"| one checkpoint over all of them | {signed:.3f} | {summary.records / signed:,.0f} |")
        size = f"{len(out.getvalue()) / 1e6:.1f} MB"
        print(f"| write the bundle ({size}) | {written:.3f} | {summary.records / written:,.0f} |")
        print(f"| verify the bundle | {checked:.3f} | {summary.records / checked:,.0f} |")


if __name__ == "__main__":
    main()
