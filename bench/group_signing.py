"""Signing per record or per group (#22): what signing every record costs against one checkpoint per group.

    uv run python bench/group_signing.py [--quick] [--rounds N] [--calls N]

Today every record is Ed25519-signed (two per guarded call). A *group mode* would instead add each group's
records to the Merkle tree and sign one C2SP checkpoint over it, a verifier checking a record by its inclusion
proof. No such mode exists: this measures

(a) today's sustained durable throughput through the real `Hashed` (every record committed and signed, the
    final flush counted), and the same loop with the per-record signatures replaced by zero bytes (a
    measurement only: the ceiling if the writer signed nothing per record);
(b) the parts a group mode would be built from (`hashed.protocol`: RFC 6962 tree, checkpoint, signed note)
    against signing each record, per group size, and the calls/s they project; a projection from measured
    parts, not a measured mode;
(c) what a verifier pays: one signature per record, against one checkpoint signature plus inclusion proofs
    (spot checks) or a recomputed tree (a whole export).

The machine is shared and noisy: variants alternate round by round and every figure is a median over rounds;
compare rows of one run only.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from hashed.identity import Identity
from hashed.ledger import _sign_service, read_ledger
from hashed.protocol import (
    Checkpoint,
    CompactRange,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    inclusion_proof,
    open_checkpoint,
    record_hash,
    root_at,
    sign_checkpoint,
    signing_message,
    verify_inclusion,
    verify_records,
    verify_signature,
)
from hashed.testing import FIXED_SEED, make_hashed

sys.path.insert(0, str(Path(__file__).parent))
from core_guard import POLICY, sustained

GROUPS = (1, 8, 64, 512)
RECORDS_PER_CALL = 2  # the decision, and the outcome
TREE_START = 2**20 - 1  # the tree the groups extend: ≈ 1M records, 20 perfect subtrees (the most a root folds)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def leaves(count: int, salt: int = 0) -> list[bytes]:
    """Stand-in record hashes (what is signed or hashed into the tree does not depend on the content)."""
    return [hashlib.sha256(b"\x00record %d %d" % (salt, i)).digest() for i in range(count)]


# (a) the real guarded loop ----------------------------------------------------------------------------------


@contextmanager
def zero_signatures() -> Iterator[list[int]]:
    """The writer's signing pipeline answers 64 zero bytes per record, without signing; yields [records seen].

    A measurement only (the records do not verify): what the durable loop does once per-record signing costs
    nothing. Patches the pipeline class the writer uses, for the duration of the block.
    """
    seen = [0]
    original = _sign_service.SigningPipeline.add

    def add(self: Any, digests: list[bytes]) -> None:
        seen[0] += len(digests)
        self._done.extend(bytes(64) for _ in digests)

    _sign_service.SigningPipeline.add = add  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        _sign_service.SigningPipeline.add = original  # type: ignore[method-assign]


def helper_cpu() -> float:
    """CPU seconds the signing helper process has used so far (0 when there is none, or not on Linux)."""
    process = _sign_service._helper.process
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split() if process else []
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def guarded_rate(home: Path, calls: int, *, signed: bool) -> tuple[float, float, float, int]:
    """Sustained durable calls/s until all are committed (and signed, unless `signed` is False), CPU µs per
    call in this process and in the signing helper, and how many records the faked pipeline saw."""
    with nullcontext([0]) if signed else zero_signatures() as seen:
        with make_hashed(home, policy=POLICY, raise_internal_errors=False) as hashed:
            sustained(hashed, 2_000)  # warm up: the signing helper starts, caches fill
            seen[0] = 0
            cpu, helper = time.process_time(), helper_cpu()
            rate = sustained(hashed, calls)
            cpu, helper = time.process_time() - cpu, helper_cpu() - helper
    return rate, cpu * 1e6 / calls, helper * 1e6 / calls, seen[0]


# (b) the parts: per-record signatures against tree + checkpoint per group -----------------------------------


def timed_per_record(fn: Callable[[list[bytes]], None], batch: list[bytes]) -> float:
    """µs per record of `fn(batch)`."""
    start = time.perf_counter_ns()
    fn(batch)
    return (time.perf_counter_ns() - start) / 1000 / len(batch)


def sign_each(identity: Identity) -> Callable[[list[bytes]], None]:
    """What the signing helper does for every record: Ed25519 over the domain-separated record hash."""

    def run(batch: list[bytes]) -> None:
        for digest in batch:
            identity.sign(signing_message(digest))

    return run


def tree_and_checkpoints(identity: Identity, group: int) -> Callable[[list[bytes]], None]:
    """What a group mode would do: append each group to the tree's compact range (what the ledger keeps with each
    checkpoint today; proofs are built from the records at export, as bundles are) and sign one C2SP checkpoint
    note over the tree's new size and root."""
    origin = agent_origin(identity.public_key)
    subtrees = leaves(TREE_START.bit_count(), salt=1)

    def run(batch: list[bytes]) -> None:
        tree = CompactRange(TREE_START, subtrees)
        for start in range(0, len(batch), group):
            tree.extend(batch[start : start + group])
            sign_checkpoint(Checkpoint(origin, tree.size, tree.root()), identity)

    return run


# (c) the verifier ---------------------------------------------------------------------------------------------


class Verifier:
    """A log of `size` records, each signed, with checkpoints every `group` records for each group size."""

    def __init__(self, identity: Identity, size: int, spot: int) -> None:
        self.identity = identity
        self.size = size
        self.leaves = leaves(size, salt=2)
        self.store = MemoryNodeStore()
        self.store.extend(self.leaves)
        self.key = identity.public_key
        self.hexes = [leaf.hex() for leaf in self.leaves]
        self.sigs = [identity.sign(signing_message(leaf)).hex() for leaf in self.leaves]
        self.origin = agent_origin(identity.public_key)
        self.note_key = NoteVerifier(self.origin, bytes.fromhex(identity.public_key))
        self.notes = {
            group: [
                sign_checkpoint(Checkpoint(self.origin, end, root_at(self.store, end)), identity)
                for end in range(group, size + 1, group)
            ]
            for group in GROUPS
        }
        rng = random.Random(22)
        self.picks = rng.sample(range(size), spot)
        self.proofs = {i: inclusion_proof(self.store, i, size) for i in self.picks}

    def signatures(self, indexes: Sequence[int]) -> None:
        """Today: one Ed25519 verification per record (`hashed verify`'s and the backend's check)."""
        for i in indexes:
            if not verify_signature(self.key, self.hexes[i], self.sigs[i]):
                raise SystemExit("a signature did not verify")

    def spot_proofs(self, count: int) -> None:
        """Group mode, spot check: the checkpoint's signature once, then one inclusion proof per record."""
        signed = open_checkpoint(self.notes[GROUPS[-1]][-1], [self.note_key])
        root = signed.checkpoint.root
        for i in self.picks[:count]:
            verify_inclusion(self.leaves[i], i, self.size, self.proofs[i], root)

    def whole_log(self, group: int) -> None:
        """Group mode, a whole export: rebuild the tree from the records, checking every checkpoint's signature
        and that its root is the tree's at its size (as `hashed verify` checks a bundle's checkpoints)."""
        tree = CompactRange()
        for note in self.notes[group]:
            signed = open_checkpoint(note, [self.note_key])
            tree.extend(self.leaves[tree.size : signed.checkpoint.size])
            if tree.root() != signed.checkpoint.root:
                raise SystemExit("a checkpoint's root does not match the records")

    def whole_log_newest(self) -> None:
        """Group mode, a whole export, attribution only: the newest checkpoint covers every record before it."""
        signed = open_checkpoint(self.notes[GROUPS[-1]][-1], [self.note_key])
        tree = CompactRange()
        tree.extend(self.leaves)
        if tree.root() != signed.checkpoint.root:
            raise SystemExit("the checkpoint's root does not match the records")


def per_call(fn: Callable[[], None], repeat: int = 1) -> float:
    """µs per run of `fn`, over `repeat` runs (short checks repeat, so one timer tick is not the result)."""
    start = time.perf_counter_ns()
    for _ in range(repeat):
        fn()
    return (time.perf_counter_ns() - start) / 1000 / repeat


# ----------------------------------------------------------------------------------------------------------------


def main() -> None:  # noqa: C901 - one benchmark run, in the order its tables print
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer calls and a smaller log")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None, help="guarded calls per round and variant")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    calls = args.calls or (5_000 if args.quick else 10_000)
    records = 4096  # records per round in (b)
    log_size = 4096 if args.quick else 8192  # (c)
    load = os.getloadavg()
    identity = Identity.from_seed(FIXED_SEED)
    began = time.perf_counter()

    rates: dict[str, list[float]] = {"signed": [], "zero": []}
    cpus: dict[str, list[float]] = {"signed": [], "zero": []}
    helpers: dict[str, list[float]] = {"signed": [], "zero": []}
    faked_records: list[int] = []
    sign_us: dict[int, list[float]] = {g: [] for g in GROUPS}
    tree_us: dict[int, list[float]] = {g: [] for g in GROUPS}
    print("setting up the verifier's log …", file=sys.stderr)
    verifier = Verifier(identity, log_size, max(GROUPS))
    spot_sig: dict[int, list[float]] = {g: [] for g in GROUPS}
    spot_proof: dict[int, list[float]] = {g: [] for g in GROUPS}
    whole_sig: list[float] = []
    whole_group: dict[int, list[float]] = {g: [] for g in GROUPS}
    whole_newest: list[float] = []
    real_records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(rounds):
            print(f"round {number + 1}/{rounds} …", file=sys.stderr)
            order = ("signed", "zero") if number % 2 == 0 else ("zero", "signed")
            for variant in order:
                home = Path(tmp) / f"{variant}-{number}"
                rate, cpu, helper, seen = guarded_rate(home, calls, signed=variant == "signed")
                rates[variant].append(rate)
                cpus[variant].append(cpu)
                helpers[variant].append(helper)
                if variant == "zero":
                    faked_records.append(seen)
                elif not real_records:
                    real_records = list(read_ledger(home / "ledger.db"))
            batch = leaves(records, salt=100 + number)
            gc.disable()
            try:
                for index, group in enumerate(GROUPS):
                    first_sign = (number + index) % 2 == 0
                    for sign_first in (first_sign, not first_sign):
                        if sign_first:
                            sign_us[group].append(timed_per_record(sign_each(identity), batch))
                        else:
                            tree_us[group].append(timed_per_record(tree_and_checkpoints(identity, group), batch))
                for group in GROUPS:
                    picks = verifier.picks[:group]
                    repeat = max(1, 256 // group)
                    spot_sig[group].append(per_call(partial(verifier.signatures, picks), repeat))
                    spot_proof[group].append(per_call(partial(verifier.spot_proofs, group), repeat))
                whole_sig.append(per_call(partial(verifier.signatures, range(log_size))))
                for group in GROUPS:
                    whole_group[group].append(per_call(partial(verifier.whole_log, group)))
                whole_newest.append(per_call(verifier.whole_log_newest))
            finally:
                gc.enable()

    start = time.perf_counter()
    real_records = real_records[:10_000]
    report = verify_records(real_records)
    full_verify = len(real_records) / (time.perf_counter() - start)
    if not report.ok:
        raise SystemExit(f"the benchmark's ledger does not verify: {report.error}")
    start = time.perf_counter()
    for record in real_records:
        record_hash(record)
    rehash_us = (time.perf_counter() - start) * 1e6 / len(real_records)

    today, zero = median(rates["signed"]), median(rates["zero"])
    print(f"\nSigning per record or per group — {time.strftime('%Y-%m-%d %H:%M %Z')}, Python {sys.version.split()[0]}")
    print(
        f"{rounds} rounds, variants alternating; medians over rounds. Shared, noisy machine: {os.cpu_count()} cores,"
        f" load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.\n"
    )
    print("(a) Durable mode, one thread, sustained until every record is committed (and signed), real `Hashed`\n")
    print("| variant | calls/s, median | min – max | ratio | CPU µs/call: this process | signing helper |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, key, ratio in (
        ("today: every record Ed25519-signed", "signed", 1.0),
        ("per-record signatures replaced by zero bytes (measurement only)", "zero", zero / today),
    ):
        values = rates[key]
        print(
            f"| {name} | {median(values):,.0f} | {min(values):,.0f} – {max(values):,.0f} | {ratio:.2f}×"
            f" | {median(cpus[key]):.1f} | {median(helpers[key]):.1f} |"
        )
    expected = RECORDS_PER_CALL * calls
    print(
        f"\n{calls:,} calls per round and variant after 2,000 warm-up calls; in the zero-signature variant the"
        f" pipeline saw {statistics.median(faked_records):,.0f} records per round (expected {expected:,}, i.e."
        " every record's signature went through it).\n"
    )

    print(f"(b) The parts, per record ({records:,} records per round on a tree of ≈ 1M leaves; 2 records per call)\n")
    print(
        "| group size (records) | sign each: µs/record | tree + 1 checkpoint per group: µs/record | ratio"
        " | checkpoint signatures/s at today's rate | signer alone: calls/s ceiling | projected durable calls/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for group in GROUPS:
        sign, tree = median(sign_us[group]), median(tree_us[group])
        needed = today * RECORDS_PER_CALL / group
        ceiling = 1e6 / (RECORDS_PER_CALL * tree)
        projected = 1 / (1 / zero + RECORDS_PER_CALL * tree / 1e6)
        print(
            f"| {group:,} | {sign:.1f} | {tree:.2f} | {sign / tree:.1f}× | {needed:,.0f} | {ceiling:,.0f}"
            f" | {projected:,.0f} |"
        )
    sign_all = median([v for g in GROUPS for v in sign_us[g]])
    print(
        f"\nToday (per-record signing): {today * RECORDS_PER_CALL:,.0f} signatures/s at the measured rate; the"
        f" signer alone could do {1e6 / (RECORDS_PER_CALL * sign_all):,.0f} calls/s on its own core"
        f" ({sign_all:.1f} µs per signature here). *Projected* = 1 / (1 / zero-signature rate + 2 × tree and"
        " checkpoint µs): the group work added serially to the writer (it could run on the helper's core"
        " instead). A projection from measured parts, not a shipped or measured mode.\n"
    )

    print("(c) The verifier, one core (signatures and proofs only; both modes also rehash every record they check)\n")
    print("| check | one signature per record: µs | group mode: µs | ratio |")
    print("|---|---:|---:|---:|")
    for group in GROUPS:
        sig, proof = median(spot_sig[group]), median(spot_proof[group])
        print(
            f"| spot-check {group:,} of {log_size:,} records (group: 1 checkpoint + {group:,} inclusion proof"
            f"{'s' if group > 1 else ''})"
            f" | {sig:,.0f} | {proof:,.0f} | {sig / proof:.1f}× |"
        )
    whole = median(whole_sig)
    for group in GROUPS:
        cost = median(whole_group[group])
        print(
            f"| whole log of {log_size:,} records, checkpoint every {group:,} (group: {log_size // group:,}"
            f" checkpoints, tree rebuilt) | {whole:,.0f} | {cost:,.0f} | {whole / cost:.1f}× |"
        )
    cost = median(whole_newest)
    print(
        f"| whole log of {log_size:,} records, newest checkpoint only (it covers them all), tree rebuilt"
        f" | {whole:,.0f} | {cost:,.0f} | {whole / cost:.1f}× |"
    )
    print(
        f"\nRehashing a record (canonical JSON + SHA-256), paid in both modes: {rehash_us:.1f} µs; today's full"
        f" `verify_records` (chain + signatures) over {len(real_records):,} records of round 1:"
        f" {full_verify:,.0f} records/s. The run took {time.perf_counter() - began:.0f} s."
    )


if __name__ == "__main__":
    main()
