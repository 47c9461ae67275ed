"""`hashed logs export`: one agent's chain from the backend as JSONL, exactly as ingested (`hashed verify` checks it).

The file is written as `FILE.part` and renamed when complete, so an interrupted export never leaves a file that
looks whole. A progress bar shows on a terminal's stderr while the records go to a file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hashed.cli._admin_client import remote
from hashed.cli._bundle import export_bundle
from hashed.cli._output import err

__all__ = ["export"]

_PROGRESS_FROM = 2000  # records: shorter exports finish before a bar is worth drawing


def export(
    agent: str | None = typer.Option(None, "--agent", "-a", help="Agent id or name (the backend's records)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (one record per line; the only format)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (default: standard output)."),
    from_seq: int = typer.Option(1, "--from-seq", min=1, help="First record (a later start needs verify --partial)."),
    to_seq: int | None = typer.Option(None, "--to-seq", min=1, help="Last record (default: the newest)."),
    bundle: Path | None = typer.Option(
        None,
        "--bundle",
        help="Write an offline audit bundle of this agent's own ledger (records, checkpoints, cosignatures, proofs).",
    ),
    ledger: Path | None = typer.Option(None, "--ledger", help="With --bundle: the ledger (default: the project's)."),
) -> None:
    """Export an agent's records as JSONL, or its whole history as an audit bundle; `hashed verify FILE` checks it."""
    if bundle is not None:
        if agent is not None or output is not None:
            raise typer.BadParameter("a bundle is written from the agent's own ledger: drop --agent and --output")
        export_bundle(bundle, ledger)
        return
    if agent is None:
        raise typer.BadParameter("which agent? (or --bundle FILE for this agent's own ledger)", param_hint="--agent")
    if fmt != "jsonl":
        raise typer.BadParameter("only jsonl is supported", param_hint="--format")
    with remote(timeout=60.0) as backend:
        agent_id = backend.agent_id(agent)
        head = int(backend.json("GET", f"/v1/agents/{agent_id}")["head"]["seq"])
        last = min(head, to_seq) if to_seq is not None else head
        total = max(0, last - from_seq + 1)
        to_file = output is not None or not sys.stdout.isatty()
        show = to_file and err.is_terminal and total >= _PROGRESS_FROM
        part = output.with_name(output.name + ".part") if output is not None else None
        count = 0
        with contextlib.ExitStack() as stack:
            sink: IO[bytes] = stack.enter_context(part.open("wb")) if part is not None else sys.stdout.buffer
            progress = stack.enter_context(
                Progress(
                    TextColumn(f"exporting {agent}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=err,
                    disable=not show,
                    transient=True,
                )
            )
            task = progress.add_task("export", total=total)
            params = {"agent": agent_id, "from_seq": from_seq, "to_seq": last if to_seq is not None else None}
            try:
                with backend.stream("/v1/logs/export", params=params) as response:
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                        lines = chunk.count(b"\n")
                        count += lines
                        progress.advance(task, lines)
                sink.flush()
            except BaseException:
                if part is not None:
                    stack.close()
                    part.unlink(missing_ok=True)
                raise
    if part is not None and output is not None:
        os.replace(part, output)
    where = str(output) if output is not None else "standard output"
    span = f" (seq {from_seq}–{from_seq + count - 1})" if count else ""
    check = f"hashed verify {output if output is not None else 'FILE'}" + (" --partial" if from_seq > 1 else "")
    err.print(
        f"[green]✓[/] exported {count} records of {agent}{span} to {where}; check them with: {check}", soft_wrap=True
    )
