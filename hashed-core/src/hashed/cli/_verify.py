"""`hashed verify`: check a ledger database or a JSONL export, and name the first bad record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hashed.cli._output import EXIT_CHECK_FAILED, console, fail, print_json
from hashed.errors import ChainBrokenError, HashedError
from hashed.ledger import ChainVerifier, count_records, is_ledger_file, read_export, read_ledger
from hashed.ledger._export import journal_backlog


def verify(
    path: Path = typer.Argument(Path(".hashed/ledger.db"), help="A ledger database or a JSONL export."),
    key: str = typer.Option(None, help="The public key (hex) the chain must start with."),
    partial: bool = typer.Option(False, "--partial", help="The export starts mid-chain (e.g. a time range)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check signatures, hashes and chain continuity; exit 1 at the first bad record."""
    if not path.exists():
        fail(f"{path} does not exist", hint="pass a ledger (.hashed/ledger.db) or an export (hashed logs export)")
    try:
        live = is_ledger_file(path)
        total = count_records(path)
        records: Iterator[dict[str, Any]] = read_ledger(path) if live else read_export(path)
        verifier = ChainVerifier(key=key, require_signatures=not live, from_anywhere=partial)
        show = console.is_terminal and not as_json and total > 5000
        with Progress(
            TextColumn("verifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
            transient=True,
        ) as progress:
            task = progress.add_task("verify", total=total)
            try:
                for record in records:
                    verifier.check(record)
                    progress.advance(task)
            except ChainBrokenError as exc:
                verifier.report.error = exc
    except ChainBrokenError as exc:
        verifier.report.error = exc
    except HashedError as exc:
        fail(str(exc))
    report = verifier.report
    waiting, unreadable = journal_backlog(path) if live else (0, [])
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "count": report.count,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "head": report.head,
                "keys": report.keys,
                "unsigned": report.unsigned,
                "journal_records": waiting,
                "journal_unreadable": [str(file) for file in unreadable],
                "error": None
                if report.error is None
                else {"seq": report.error.sequence, "reason": report.error.reason},
            }
        )
    elif report.ok:
        console.print(
            f"[green]✓[/] {report.count} records verified"
            + (f" (seq {report.first_seq}–{report.last_seq})" if report.count else "")
            + f", head {report.head[:16]}…"
        )
        for index, signer in enumerate(report.keys):
            console.print(f"  {'signed by' if index == 0 else 'rotated to'} key {signer}")
        if report.unsigned:
            console.print(
                f"[yellow]![/] {report.unsigned} records are not signed yet (a running agent signs them "
                "within tens of milliseconds; the next start signs what a crash left)"
            )
        if waiting:
            console.print(
                f"[yellow]![/] {waiting} record(s) wait in a journal beside the ledger, not in it yet "
                "(a running agent commits them within a tenth of a second; the next start of the agent "
                "commits what a killed process left)"
            )
        for file in unreadable:
            console.print(
                f"[yellow]![/] {file} is not a journal this version can read: the agent will not start until it "
                "is moved aside (keep it: records it holds are not in the ledger)"
            )
    else:
        assert report.error is not None  # noqa: S101 - `ok` is False exactly when error is set
        console.print(f"[bold red]✗ record {report.error.sequence}:[/] {report.error.reason}")
        console.print(f"  {report.count} records before it verified")
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
