"""`hashed approvals list | approve | deny`: answer the agent's requests for a person's approval."""

from __future__ import annotations

import datetime
import getpass
import time

import typer
from rich.table import Column, Table

from hashed.cli._output import console, fail, print_json
from hashed.config import HashedSettings
from hashed.errors import HashedError
from hashed.ledger._db import Database
from hashed.policy._approval import ApprovalRequest, ApprovalStore

app = typer.Typer(help="Answer approval requests.", no_args_is_help=True)


def _store() -> ApprovalStore:
    settings = HashedSettings.load()
    if not settings.ledger_path.exists():
        fail(f"no ledger at {settings.ledger_path}", hint="run this where the agent runs, or set HASHED_HOME")
    return ApprovalStore(Database(settings.ledger_path), time.time_ns)


def _when(ns: int | None) -> str:
    if ns is None:
        return ""
    return datetime.datetime.fromtimestamp(ns / 1e9).isoformat(sep=" ", timespec="seconds")


def _as_dict(request: ApprovalRequest) -> dict[str, object]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


@app.command("list")
def list_requests(
    status: str = typer.Option("pending", help="pending, approved, denied, expired or all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List approval requests (pending ones by default)."""
    requests = _store().list(None if status == "all" else status)
    if as_json:
        print_json([_as_dict(r) for r in requests])
        return
    if not requests:
        console.print(f"no {status if status != 'all' else ''} approval requests".replace("  ", " "))
        return
    table = Table(Column("id", no_wrap=True), "agent", "tool", "arguments", "rule", "status", "asked", "expires")
    for r in requests:
        table.add_row(
            r.id, r.agent, r.tool, str(r.args), r.rule or "", r.status, _when(r.created_ns), _when(r.expires_ns)
        )
    console.print(table)


def _decide(request_id: str, approve: bool, comment: str | None, by: str | None) -> None:
    try:
        request = _store().decide(request_id, approve=approve, by=by or getpass.getuser(), comment=comment)
    except HashedError as exc:
        fail(str(exc), code=1)
    verb = "approved" if approve else "denied"
    console.print(
        f"[green]✓[/] {verb} {request.id}: {request.tool} {request.args} "
        f"(the agent's next identical call {'runs' if approve else 'is refused'})"
    )


@app.command()
def approve(
    request_id: str,
    comment: str = typer.Option(None, "--comment", "-m"),
    by: str = typer.Option(None, help="Approver name (default: your user name)."),
) -> None:
    """Approve a pending request."""
    _decide(request_id, True, comment, by)


@app.command()
def deny(
    request_id: str,
    comment: str = typer.Option(None, "--comment", "-m"),
    by: str = typer.Option(None, help="Approver name (default: your user name)."),
) -> None:
    """Deny a pending request."""
    _decide(request_id, False, comment, by)
