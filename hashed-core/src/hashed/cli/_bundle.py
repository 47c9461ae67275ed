"""`hashed logs export --bundle FILE` and `hashed verify BUNDLE`: an agent's history checked from one file, offline.

The bundle (docs/protocol.md §8.7) holds the records, every checkpoint the agent signed with the witness
cosignatures gathered for it, and the consistency proofs between them; `hashed verify` checks all of it with no
network and no database, and names the first check that fails (docs/audit.md walks an auditor through it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer
from rich.markup import escape

from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_NOTHING_CHECKED, EXIT_USAGE, console, err, fail, print_json
from hashed.cli._project import ledger_file
from hashed.errors import HashedError, NoteError
from hashed.ledger._bundle import write_ledger_bundle
from hashed.protocol import (
    BUNDLE_FORMAT,
    BundleReader,
    BundleReport,
    NoteVerifier,
    agent_origin,
    parse_verifier_key,
    verify_bundle,
)

__all__ = ["export_bundle", "is_bundle_file", "verify_bundle_file"]


def export_bundle(out: Path, ledger: Path | None) -> None:
    """Write the bundle of the project's ledger (or `ledger`) to `out`, atomically (`out.part`, then renamed)."""
    path = ledger_file(ledger)
    part = out.with_name(out.name + ".part")
    try:
        with part.open("wb") as handle:
            summary = write_ledger_bundle(path, handle)
    except (OSError, HashedError) as exc:
        part.unlink(missing_ok=True)
        fail(f"no bundle written: {exc}", code=EXIT_CHECK_FAILED, hint=f"check the ledger: hashed verify {path}")
    os.replace(part, out)
    origin = agent_origin(summary.key)
    vkey = NoteVerifier(origin, bytes.fromhex(summary.key)).vkey
    err.print(
        f"[green]✓[/] {summary.records} records and {summary.checkpoints} checkpoints (the newest covers "
        f"{summary.covered}; {summary.cosignatures} witness cosignatures in all) written to {escape(str(out))}"
    )
    if summary.unsigned:
        err.print(f"[yellow]![/] {summary.unsigned} records at the tail are not signed yet: the next bundle has them")
    err.print(f"give the auditor the agent's verifier key with it (out of band): {vkey}")
    err.print(f"[dim]→ they check it with: hashed verify {escape(str(out))} --key {summary.key}[/]")


def is_bundle_file(path: Path) -> bool:
    """Whether `path` starts with an audit bundle's header line."""
    try:
        with path.open("rb") as handle:
            first = orjson.loads(handle.readline(4096))
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(first, dict) and first.get("type") == "header" and first.get("format") == BUNDLE_FORMAT


def _pin(key: str | None) -> str | None:
    """A pinned key given as hex or as the agent's verifier key (hashed proof key prints it)."""
    if key is None or "+" not in key:
        return key
    try:
        verifier = parse_verifier_key(key)
    except NoteError as exc:
        fail(f"--key {key[:40]}…: {exc}", code=EXIT_USAGE, hint="pass the agent's hex public key or verifier key")
    if verifier.name != agent_origin(verifier.public_key.hex()):
        fail(
            "--key: that verifier key is not an agent log's", code=EXIT_USAGE, hint="hashed proof key EXPORT prints it"
        )
    return verifier.public_key.hex()


def _witnesses(keys: list[str], required: int | None) -> tuple[list[NoteVerifier], int]:
    try:
        witnesses = [parse_verifier_key(key) for key in keys]
    except NoteError as exc:
        fail(f"--witness: {exc}", code=EXIT_USAGE, hint="pass the verifier key hashed witness init printed")
    need = len(witnesses) if required is None else required
    if need > len(witnesses):
        fail(f"--min-witnesses {need} but {len(witnesses)} --witness given", code=EXIT_USAGE)
    return witnesses, need


def _held(path: Path | None) -> list[str]:
    """Checkpoints held elsewhere: a checkpoint note file, or another bundle (its checkpoints)."""
    if path is None:
        return []
    try:
        if is_bundle_file(path):
            with path.open("rb") as handle:
                return [c.note for c in BundleReader(handle).checkpoints]
        return [path.read_text(encoding="utf-8")]
    except (OSError, ValueError) as exc:
        fail(f"cannot read the checkpoint {path}: {exc}", code=EXIT_USAGE, hint="hashed proof checkpoint --out FILE")


def verify_bundle_file(
    path: Path, key: str | None, witness: list[str], min_witnesses: int | None, checkpoint: Path | None, as_json: bool
) -> NoReturn:
    """Check a bundle, print the verdict, and exit: 0 ok, 1 a check failed, 4 no records."""
    pin = _pin(key)
    witnesses, need = _witnesses(witness, min_witnesses)
    held = _held(checkpoint)
    try:
        with path.open("rb") as handle:
            result = verify_bundle(handle, key=pin, witnesses=witnesses, min_witnesses=need, also=held)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_USAGE)
    if as_json:
        print_json(_as_dict(result))
    else:
        _print(path, result, pin, len(witnesses))
    if result.verdict == "empty":
        raise typer.Exit(EXIT_NOTHING_CHECKED)
    raise typer.Exit(0 if result.ok else EXIT_CHECK_FAILED)


def _print(path: Path, result: BundleReport, pin: str | None, witnesses: int) -> None:
    if not result.ok:
        console.print(f"[bold red]✗ {result.verdict}:[/] {escape(result.reason)}")
        hint = _HINTS.get(result.verdict)
        if hint:
            err.print(f"[dim]→ {escape(hint)}[/]")
        return
    chain = result.chain
    console.print(f"[green]✓[/] {escape(str(path))}: {escape(result.reason)}")
    for index, signer in enumerate(chain.keys):
        console.print(f"  {'signed by' if index == 0 else 'rotated to'} key {signer}")
    if result.cosigned:
        console.print(f"  the newest checkpoint is cosigned by {', '.join(result.cosigned)}")
    if chain.count > result.covered:
        console.print(f"[yellow]![/] records {result.covered + 1}–{chain.count} are signed but in no checkpoint yet")
    if pin is None:
        err.print("[yellow]![/] no --key: the bundle's own key was trusted; pin the key you got from the agent")
    if not witnesses:
        err.print("[dim]note: without --witness nothing shows this is the history others were shown (docs/audit.md)[/]")


_HINTS = {
    "not_a_bundle": "pass a file written by: hashed logs export --bundle FILE",
    "wrong_key": "this is another agent's history, or the key you pinned is wrong: ask the agent's owner",
    "chain_broken": "a record was altered, removed or forged: keep the file as evidence",
    "truncated": "records the agent signed are missing: ask for a complete bundle and keep this one",
    "rewritten": "the records are not the history the agent signed: keep the file as evidence",
    "forked": "the agent's key signed two histories: keep both files as evidence",
    "inconsistent": "the bundle's proofs do not link its checkpoints: ask for a new bundle",
    "bad_checkpoint": "a checkpoint is not signed by the agent's key in force at its size",
    "bad_cosignature": "a cosignature from a witness you trust does not verify: keep the file as evidence",
    "witnesses": "ask the agent's owner to gather cosignatures, or lower --min-witnesses if your policy allows",
    "empty": "an empty bundle proves nothing",
}


def _as_dict(result: BundleReport) -> dict[str, Any]:
    chain = result.chain
    return {
        "ok": result.ok,
        "verdict": result.verdict,
        "reason": result.reason,
        "records": chain.count,
        "head": chain.head,
        "keys": chain.keys,
        "checkpoints": result.checkpoints,
        "covered": result.covered,
        "cosigned": list(result.cosigned),
        "evidence": list(result.evidence),
    }
