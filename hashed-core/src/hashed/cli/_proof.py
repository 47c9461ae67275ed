"""`hashed proof key | inclusion | consistency | checkpoint | cosign`: Merkle proofs and signed checkpoints.

Everything but `cosign` (which asks witnesses) is computed from files, with no network and no database: the export's
records are the leaves, the checkpoints are checked against the log's key (pinned with --key, else the export's).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import typer

from hashed.cli._cosign import cosign
from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_USAGE, err, fail
from hashed.cli._project import ledger_file
from hashed.errors import HashedError
from hashed.ledger._checkpoints import latest_checkpoint
from hashed.ledger._db import Database, SQLiteError
from hashed.protocol import (
    MemoryNodeStore,
    NoteVerifier,
    SignedCheckpoint,
    agent_origin,
    consistency_proof,
    inclusion_proof,
    open_checkpoint,
    parse_verifier_key,
    read_export,
    verify_consistency,
    verify_inclusion,
    verify_records,
)

__all__ = ["app"]

app = typer.Typer(help="Prove that a record is in a checkpoint, or that one checkpoint extends another.")

EXPORT = typer.Argument(..., help="A JSONL export (hashed logs export), from seq 1.")
KEY = typer.Option(None, "--key", help="The public key (hex) the agent's chain starts with (pin it).")


def _tree(export: Path, key: str | None) -> tuple[list[dict[str, Any]], MemoryNodeStore, list[NoteVerifier]]:
    """The export's records and tree, and the log's keys: the first (its name), then each it was rotated to."""
    try:
        records = list(read_export(export))
    except (OSError, HashedError) as exc:
        fail(f"cannot read {export}: {exc}", hint="export with: hashed logs export --out FILE")
    report = verify_records(records, key=key)
    if report.error is not None or not report.keys:
        fail(f"{export} does not verify: {report.error or 'no records'}", code=EXIT_CHECK_FAILED)
    origin = agent_origin(report.keys[0])
    store = MemoryNodeStore()
    store.extend(bytes.fromhex(record["hash"]) for record in records)
    return records, store, [NoteVerifier(origin, bytes.fromhex(key)) for key in report.keys]


def _checkpoint(path: Path, logs: list[NoteVerifier]) -> SignedCheckpoint:
    log = logs[0]
    try:
        return open_checkpoint(path.read_bytes(), logs)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except HashedError as exc:
        fail(f"{path}: {exc}", code=EXIT_CHECK_FAILED, hint=f"the log's verifier key is {log.vkey}")


@app.command()
def key(export: Path = EXPORT, pin: str = KEY) -> None:
    """Print the agent log's verifier key (for witnesses: hashed witness add-log KEY)."""
    typer.echo(_tree(export, pin)[2][0].vkey)


@app.command()
def inclusion(
    export: Path | None = typer.Argument(None, help="A JSONL export (hashed logs export), from seq 1."),
    checkpoint: Path | None = typer.Argument(None, help="A checkpoint signed by the agent."),
    seq: int = typer.Option(..., help="The record's sequence number."),
    pin: str = KEY,
    agent: str | None = typer.Option(
        None, "--remote", metavar="AGENT", help="Ask the backend (hashed login) instead of reading files."
    ),
    size: int | None = typer.Option(None, "--size", help="With --remote: the tree size (default: the latest)."),
    backend_key: str | None = typer.Option(
        None, "--backend-key", help="With --remote: the backend's checkpoint key to pin (default: as it states it)."
    ),
) -> None:
    """Print a c2sp.org/tlog-proof that record SEQ is in the checkpoint (verified before it is printed)."""
    if agent is not None:
        _remote_inclusion(agent, seq, size, pin, backend_key)
        return
    if export is None or checkpoint is None:
        fail("pass EXPORT and CHECKPOINT, or --remote AGENT", code=EXIT_USAGE)
    records, store, log = _tree(export, pin)
    signed = _checkpoint(checkpoint, log)
    size = signed.checkpoint.size
    if not 1 <= seq <= min(size, len(records)):
        fail(f"record {seq} is not covered: the checkpoint has {size} records, the export {len(records)}", code=2)
    if size > len(records):
        fail(
            f"the checkpoint covers {size} records but the export has {len(records)}: the tail was cut off",
            code=EXIT_CHECK_FAILED,
        )
    proof = inclusion_proof(store, seq - 1, size)
    try:
        verify_inclusion(bytes.fromhex(records[seq - 1]["hash"]), seq - 1, size, proof, signed.checkpoint.root)
    except HashedError as exc:
        fail(f"record {seq} is not in this checkpoint: {exc}", code=EXIT_CHECK_FAILED)
    lines = "".join(base64.b64encode(p).decode() + "\n" for p in proof)
    typer.echo(f"c2sp.org/tlog-proof@v1\nindex {seq - 1}\n{lines}\n{signed.raw}", nl=False)


def _remote_inclusion(agent: str, seq: int, size: int | None, pin: str | None, backend_key: str | None) -> None:
    """The backend's proof for AGENT's record SEQ, checked here: its checkpoint's signature(s), then the path."""
    from hashed.cli._admin_client import remote

    with remote() as backend:
        agent_id = backend.agent_id(agent)
        params = {"seq": seq, **({"size": size} if size else {})}
        proof = backend.json("GET", f"/v1/agents/{agent_id}/proof/inclusion", params=params)
        stated = backend_key or backend.json("GET", "/v1/backend-key")["checkpoint_key"]
    try:
        trusted = [parse_verifier_key(stated)]
        if pin is not None:  # the agent's own signature is then required too
            trusted.append(NoteVerifier(agent_origin(pin), bytes.fromhex(pin)))
        signed = open_checkpoint(proof["checkpoint"], trusted)
        signers = {s.name for s in signed.note.signatures}
        if pin is not None and agent_origin(pin) not in signers:
            fail(f"no checkpoint signed by the agent at size {proof['size']}", code=EXIT_CHECK_FAILED)
        hashes = [bytes.fromhex(p) for p in proof["proof"]]
        verify_inclusion(bytes.fromhex(proof["leaf"]), seq - 1, signed.checkpoint.size, hashes, signed.checkpoint.root)
    except (HashedError, ValueError) as exc:
        fail(f"the backend's proof of record {seq} does not verify: {exc}", code=EXIT_CHECK_FAILED)
    typer.echo(proof["tlog_proof"], nl=False)


@app.command()
def consistency(
    export: Path = EXPORT,
    old: Path = typer.Argument(..., help="The earlier checkpoint."),
    new: Path = typer.Argument(..., help="The later checkpoint."),
    pin: str = KEY,
) -> None:
    """Check that NEW extends OLD (the export supplies the proof), and print the proof's hashes."""
    records, store, log = _tree(export, pin)
    first, second = _checkpoint(old, log).checkpoint, _checkpoint(new, log).checkpoint
    if second.size > len(records):
        fail(
            f"{new} covers {second.size} records but the export has {len(records)}: the tail was cut off",
            code=EXIT_CHECK_FAILED,
        )
    if not 0 < first.size <= second.size:
        fail(f"{old} must be a non-empty checkpoint no larger than {new}", code=2)
    proof = consistency_proof(store, first.size, second.size)
    try:
        verify_consistency(first.size, second.size, first.root, second.root, proof)
    except HashedError as exc:
        fail(f"{new} does not extend {old}: {exc}", code=EXIT_CHECK_FAILED, hint="keep both files: they are evidence")
    for digest in proof:
        typer.echo(base64.b64encode(digest).decode())
    err.print(f"[green]✓[/] size {second.size} extends size {first.size}")


@app.command("checkpoint")
def checkpoint_(
    ledger: Path | None = typer.Argument(None, help="A ledger database (default: the project's)."),
    out: Path | None = typer.Option(None, "--out", help="Write it to this file (default: print it)."),
) -> None:
    """Print the latest checkpoint the agent signed over its ledger (periodically and at close): keep it."""
    path = ledger_file(ledger)
    db = Database(path, readonly=True)
    try:
        note = latest_checkpoint(db)
    except SQLiteError as exc:  # a damaged file, or a ledger older than checkpoints (no table yet)
        note = None
        if "no such table" not in str(exc):
            fail(f"cannot read {path}: {exc}", code=EXIT_CHECK_FAILED)
    finally:
        db.close()
    if note is None:
        fail(f"{path} holds no signed checkpoint yet", code=4, hint="the agent signs one periodically and at close")
    if out is None:
        typer.echo(note, nl=False)
        return
    out.write_text(note, encoding="utf-8")
    err.print(f"[green]✓[/] checkpoint of size {note.splitlines()[1]} written to {out}")


app.command("cosign")(cosign)
