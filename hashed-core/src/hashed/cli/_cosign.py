"""`hashed proof cosign`: ask witnesses to cosign the agent's latest checkpoint, and keep the cosignatures.

The ledger stores them with the checkpoint, so the next `hashed logs export --bundle` carries them and an auditor
can demand N of them (`hashed verify BUNDLE --witness VKEY --min-witnesses N`). Run it where the agent runs,
e.g. after each deployment or from cron: a witness that saw the log grow cosigns only what extends it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_NOTHING_CHECKED, EXIT_USAGE, console, err, fail
from hashed.cli._project import ledger_file
from hashed.errors import HashedError, NoteError
from hashed.ledger import read_ledger
from hashed.ledger._checkpoints import latest_checkpoint, store_cosigned
from hashed.ledger._db import Database
from hashed.protocol import MemoryNodeStore, NoteVerifier, agent_origin, consistency_proof
from hashed.witness import Witness, request_cosignatures

__all__ = ["cosign"]


def _witness(value: str) -> Witness:
    url, _, vkey = value.strip().partition(" ")
    try:
        return Witness.parse(url, vkey.strip())
    except NoteError as exc:
        fail(
            f"--witness {value[:60]!r}: {exc}",
            code=EXIT_USAGE,
            hint='pass "URL VKEY", e.g. "http://w:8410 name+id+key"',
        )


def cosign(
    ledger: Path | None = typer.Argument(None, help="A ledger database (default: the project's)."),
    witness: list[str] = typer.Option(..., "--witness", help='"URL VKEY" of a witness to ask; repeat it.'),
    required: int | None = typer.Option(None, "--min", min=0, help="Fail unless this many cosigned (default: all)."),
) -> None:
    """Ask witnesses to cosign the latest checkpoint; store their cosignatures in the ledger (bundles carry them)."""
    path = ledger_file(ledger)
    witnesses = [_witness(value) for value in witness]
    need = len(witnesses) if required is None else required
    db = Database(path)
    try:
        note = latest_checkpoint(db)
        if note is None:
            fail(
                f"{path} holds no signed checkpoint yet", code=EXIT_NOTHING_CHECKED, hint="the agent signs one at close"
            )
        store = MemoryNodeStore()
        records = list(read_ledger(path))
        store.extend(bytes.fromhex(r["hash"]) for r in records)
        origin = agent_origin(records[0]["key"])
        keys = {r["new_key"] if r["kind"] == "key_rotation" else r["key"] for r in records}
        log = [NoteVerifier(origin, bytes.fromhex(key)) for key in sorted(keys)]
        try:
            report = request_cosignatures(note, log, witnesses, lambda m, n: consistency_proof(store, m, n), required=0)
        except HashedError as exc:
            fail(f"cannot ask the witnesses: {exc}", code=EXIT_CHECK_FAILED)
        added = store_cosigned(db, report.note)
    finally:
        db.close()
    for outcome in report.outcomes:
        mark = "[green]✓[/]" if outcome.cosignature is not None else "[red]✗[/]"
        console.print(f"{mark} {escape(outcome.witness)}: {escape(outcome.detail)}")
    for view in report.split_views:
        err.print(f"[bold red]split view:[/] {escape(view.report())}")
    size = note.split("\n", 2)[1]
    console.print(
        f"{report.cosigned} of {len(witnesses)} witnesses cosigned the checkpoint of size {size} ({added} new)"
    )
    if report.cosigned < need or report.split_views:
        raise typer.Exit(EXIT_CHECK_FAILED)
