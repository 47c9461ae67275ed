"""`hashed verify`: check a ledger database or a JSONL export, and name the first bad record.

A hash chain shows that nothing before its head was altered, removed or reordered; it cannot show that records
after the head were cut off (a truncated tail), nor that a file holding no records ever held any. So an empty
input is a warning with its own exit code, and every result says how to detect a truncated tail: compare the head
with another copy of the chain (the backend's, or the agent's own).

A record without a signature is not proven to be the agent's: verify fails on it, naming it. A running agent
signs its records within milliseconds, so `--in-flight` accepts up to `IN_FLIGHT` unsigned records at the tail
of a live ledger (reported, not proven); never an unsigned record further back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hashed.cli._bundle import is_bundle_file, verify_bundle_file
from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_NOTHING_CHECKED, EXIT_USAGE, console, err, fail, print_json
from hashed.cli._project import project
from hashed.cli._verify_checkpoint import against_checkpoint
from hashed.errors import ChainBrokenError, HashedError
from hashed.ledger import ChainVerifier, VerifyReport, count_records, is_ledger_file, read_export, read_ledger
from hashed.ledger._db import SQLiteError
from hashed.ledger._export import journal_backlog
from hashed.protocol import BundleReader

IN_FLIGHT = 10_000  # unsigned records `--in-flight` accepts, all within this many of the head
TAIL_NOTE = (
    "a hash chain cannot show records cut off after its head (a truncated tail): compare the head with another "
    "copy, the backend's (hashed agent show AGENT) or the agent's (hashed status), or verify against a checkpoint "
    "the agent signed: hashed proof checkpoint --out FILE, later hashed verify --checkpoint FILE"
)


def verify(
    path: Path | None = typer.Argument(
        None,
        metavar="[PATH]",
        show_default=False,
        help="A ledger database, a JSONL export or an audit bundle (default: the project's ledger).",
    ),
    key: str = typer.Option(
        None, "--key", help="The public key (hex) the chain must start with (a bundle also takes the verifier key)."
    ),
    partial: bool = typer.Option(False, "--partial", help="The export starts mid-chain (e.g. a time range)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    in_flight: bool = typer.Option(
        False,
        "--in-flight",
        help=f"Accept up to {IN_FLIGHT:,} unsigned records at the tail of a running agent's ledger (not proven).",
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="A checkpoint the agent signed (hashed proof checkpoint), or another bundle: prove nothing was cut off "
        "or rewritten, and no second history was signed.",
    ),
    bundle: bool = typer.Option(
        False, "--bundle", help="PATH is an audit bundle (hashed logs export --bundle); detected without it."
    ),
    witness: list[str] | None = typer.Option(
        None, "--witness", help="A witness's verifier key whose cosignatures a bundle's checkpoints must carry; repeat."
    ),
    min_witnesses: int | None = typer.Option(
        None,
        "--min-witnesses",
        min=0,
        help="How many --witness must have cosigned the newest checkpoint (default: all).",
    ),
) -> None:
    """Check signatures, hashes and chain continuity; exit 1 at the first bad record, 4 when there is none."""
    path = _resolve(path, as_json)
    if bundle or is_bundle_file(path):
        if partial or in_flight:
            fail("--partial and --in-flight are for ledgers and exports", code=EXIT_USAGE, hint="a bundle is whole")
        verify_bundle_file(path, key, witness or [], min_witnesses, checkpoint, as_json)
    if witness or min_witnesses is not None:
        fail("--witness and --min-witnesses check an audit bundle", code=EXIT_USAGE, hint="hashed logs export --bundle")
    try:
        live = is_ledger_file(path)
        report = _check(path, live, key, partial, show_progress=console.is_terminal and not as_json)
        _refuse_unsigned(report, in_flight)
        if checkpoint is not None and report.ok:
            _against(path, live, report, checkpoint, as_json)
        waiting, unreadable = journal_backlog(path) if live else (0, [])
    except (OSError, SQLiteError, ValueError, HashedError) as exc:  # not a ledger, a damaged one, unreadable
        _unreadable(path, exc, as_json)
    if as_json:
        print_json(_as_dict(report, waiting, unreadable))
    elif report.ok:
        if report.count:
            _print_ok(report)
        _print_not_yet_in_the_chain(report, waiting, unreadable)
        if report.count:
            err.print(f"[dim]note: {TAIL_NOTE}[/]")
    elif report.error is not None:
        _print_failure(report.error, report.count)
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
    if not report.count:
        _nothing(f"{path} holds no records", as_json)


def _check(path: Path, live: bool, key: str | None, partial: bool, *, show_progress: bool) -> VerifyReport:
    total = count_records(path)
    records: Iterator[dict[str, Any]] = read_ledger(path) if live else read_export(path)
    verifier = ChainVerifier(key=key, require_signatures=not live, from_anywhere=partial)
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (show_progress and total > 5000),
        transient=True,
    ) as progress:
        task = progress.add_task("verify", total=total)
        try:
            for record in records:
                verifier.check(record)
                progress.advance(task)
        except ChainBrokenError as exc:
            verifier.report.error = exc
    return verifier.report


def _resolve(path: Path | None, as_json: bool) -> Path:
    """The ledger or export to check (the project's by default); a usage error for what cannot be one."""
    if path is None:
        path = project().ledger_path
        if not path.exists():
            if as_json:
                print_json(_as_dict(VerifyReport(), 0, []))
            _nothing(f"no ledger yet at {path}: no call has been guarded here", as_json)
    elif not path.exists():
        fail(f"{path} does not exist", code=EXIT_USAGE, hint="pass a ledger (.hashed/ledger.db) or an export")
    elif path.is_dir():
        inside = path / "ledger.db"
        hint = f"hashed verify {inside}" if inside.exists() else "pass a ledger file or an export, not a folder"
        fail(f"{path} is a folder", code=EXIT_USAGE, hint=hint)
    return path


def _against(path: Path, live: bool, report: VerifyReport, checkpoint: Path, as_json: bool) -> None:
    """Check the verified chain against a signed checkpoint: a bad checkpoint is its own error, not the ledger's."""
    try:
        report.error = against_checkpoint(path, live, report, _read_note(checkpoint))
    except HashedError as exc:
        fail(f"{checkpoint}: {exc}", code=EXIT_CHECK_FAILED, hint="take it from the agent: hashed proof checkpoint")
    if report.error is None and not as_json:
        err.print(f"[green]✓[/] the history the agent signed in {escape(str(checkpoint))}, whole: nothing cut off")


def _read_note(path: Path) -> str:
    """A checkpoint note, or the newest checkpoint of a bundle."""
    try:
        if is_bundle_file(path):
            with path.open("rb") as handle:
                newest = BundleReader(handle).checkpoints[-1:]
            if not newest:
                fail(
                    f"the bundle {path} holds no checkpoint", code=EXIT_USAGE, hint="hashed proof checkpoint --out FILE"
                )
            return newest[0].note
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        fail(f"cannot read the checkpoint {path}: {exc}", code=EXIT_USAGE, hint="hashed proof checkpoint --out FILE")


def _print_failure(error: ChainBrokenError, verified: int) -> None:
    console.print(f"[bold red]✗ record {error.sequence}:[/] {escape(error.reason)}")
    console.print(f"  {verified} records before it verified")
    if error.code == "unsigned":
        err.print(
            "[dim]→ an agent signs its own records within milliseconds, and the next start signs what a stopped "
            "one left; a record it did not write stays unsigned. Run again, or pass --in-flight to accept "
            f"up to {IN_FLIGHT:,} unsigned records at the tail of a running agent's ledger[/]"
        )


def _refuse_unsigned(report: VerifyReport, in_flight: bool) -> None:
    """Fail at the first unsigned record, unless `--in-flight` and it lies in a bounded tail."""
    first = report.first_unsigned
    if report.error is not None or first is None or report.last_seq is None:
        return
    if in_flight and report.unsigned <= IN_FLIGHT and report.last_seq - first < IN_FLIGHT:
        return
    why = "not signed" if not in_flight else f"not signed, and more than {IN_FLIGHT:,} records from the head"
    report.error = ChainBrokenError(first, why, code="unsigned")
    report.count = first - (report.first_seq or first)


def _as_dict(report: VerifyReport, waiting: int, unreadable: list[Path]) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "count": report.count,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "head": report.head,
        "keys": report.keys,
        "unsigned": report.unsigned,
        "journal_records": waiting,
        "journal_unreadable": [str(file) for file in unreadable],
        "error": None if report.error is None else {"seq": report.error.sequence, "reason": report.error.reason},
        "warning": "empty" if report.ok and not report.count else None,
    }


def _print_ok(report: VerifyReport) -> None:
    console.print(
        f"[green]✓[/] {report.count} records verified (seq {report.first_seq}–{report.last_seq}), "
        f"head {report.head[:16]}…"
    )
    for index, signer in enumerate(report.keys):
        console.print(f"  {'signed by' if index == 0 else 'rotated to'} key {signer}")


def _print_not_yet_in_the_chain(report: VerifyReport, waiting: int, unreadable: list[Path]) -> None:
    if report.unsigned:
        console.print(
            f"[yellow]![/] {report.unsigned} records at the tail are not signed yet, so not proven (--in-flight: "
            "a running agent signs its own within milliseconds)"
        )
    if waiting:
        console.print(
            f"[yellow]![/] {waiting} record(s) wait in a journal beside the ledger, not in it yet "
            "(a running agent commits them within a tenth of a second; the next start of the agent "
            "commits what a killed process left)"
        )
    for file in unreadable:
        console.print(
            f"[yellow]![/] {escape(str(file))} is not a journal this version can read: the agent will not start "
            "until it is moved aside (keep it: records it holds are not in the ledger)"
        )


def _nothing(why: str, as_json: bool) -> NoReturn:
    """Nothing verified: a warning (with --json: the `warning` field) and exit 4. An empty chain proves nothing."""
    if not as_json:
        err.print(f"[yellow]warning:[/] 0 records verified: {escape(why)}")
        err.print(
            "[dim]→ an empty ledger or export shows nothing, not even that records were removed: "
            "compare with the backend's copy (hashed agent show AGENT, hashed logs export --agent AGENT)[/]"
        )
    raise typer.Exit(EXIT_NOTHING_CHECKED)


def _unreadable(path: Path, exc: BaseException, as_json: bool) -> NoReturn:
    reason = f"{path} cannot be read as a ledger or an export: {exc}"
    if as_json:
        print_json({"ok": False, "count": 0, "error": {"seq": None, "reason": reason}, "warning": None})
    fail(
        reason,
        code=EXIT_CHECK_FAILED,
        hint="pass a ledger database (.hashed/ledger.db) or a JSONL export (hashed logs export)",
    )
