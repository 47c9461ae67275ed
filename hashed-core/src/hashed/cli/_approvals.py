"""`hashed approvals list | approve | deny`: answer the agents' requests for a person's approval.

Locally (where the agent runs) the requests are in the agent's ledger. With `--remote`, or when there is no
local ledger and you are logged in (`hashed login`), they are the backend's: every agent's requests, answered
with a signature of the backend's key that the agent checks before it lets the call run.
"""

from __future__ import annotations

import datetime
import getpass
import json
import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from hashed.cli._admin_client import has_login, remote
from hashed.cli._fmt import local_time, state
from hashed.cli._output import console, err, fail, print_json
from hashed.config import HashedSettings
from hashed.errors import HashedError
from hashed.ledger._approvals import ApprovalRequest, ApprovalStore
from hashed.ledger._db import Database

app = typer.Typer(help="Answer approval requests (locally, or at the backend with --remote).", no_args_is_help=True)

_STATUSES = ("pending", "approved", "denied", "expired", "all")
_REMOTE = typer.Option(
    False, "--remote", help="Use the backend (hashed login); the default when there is no local ledger."
)


def _is_remote(remote_flag: bool) -> bool:
    if remote_flag:
        return True
    settings = HashedSettings.load()
    if settings.ledger_path.exists():
        return False
    if has_login():
        return True
    fail(
        f"no ledger at {settings.ledger_path}, and not logged in to a backend",
        hint="run this where the agent runs (or set HASHED_HOME), or hashed login to answer the backend's requests",
    )


def _store() -> ApprovalStore:
    settings = HashedSettings.load()
    return ApprovalStore(Database(settings.ledger_path), time.time_ns)


def _when(ns: int | None) -> str:
    if ns is None:
        return ""
    return datetime.datetime.fromtimestamp(ns / 1e9).isoformat(sep=" ", timespec="seconds")


def _as_dict(request: ApprovalRequest) -> dict[str, object]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def _table() -> Table:
    if console.width >= 120:
        return Table(Column("id", no_wrap=True), "agent", "tool", "arguments", "rule", "status", "asked", "expires")
    return Table(Column("id", no_wrap=True), "agent", "tool", "arguments", "status", "expires")


def _row(values: list[str]) -> list[str]:
    """All eight columns on a wide terminal; id, agent, tool, arguments, status, expires otherwise."""
    return values if console.width >= 120 else [*values[:4], values[5], values[7]]


def _args(args: object) -> str:
    return escape(json.dumps(args, separators=(", ", ": "), default=str))


def _list_remote(status: str, limit: int, as_json: bool) -> None:
    with remote() as backend:
        page = backend.json(
            "GET", "/v1/approvals", params={"status": None if status == "all" else status, "limit": limit}
        )
    if as_json:
        print_json(page["items"])
        return
    if not page["items"]:
        console.print(f"no {status if status != 'all' else ''} approval requests at the backend".replace("  ", " "))
        return
    table = _table()
    for r in page["items"]:
        table.add_row(
            *_row(
                [
                    r["id"],
                    escape(r["agent"]),
                    escape(r["tool"]),
                    _args(r["args"]),
                    escape(r.get("rule") or ""),
                    state(r["status"]),
                    local_time(r.get("created_at")),
                    local_time(r.get("expires_at")),
                ]
            )
        )
    console.print(table)
    if page["next_cursor"]:
        err.print(f"[dim]→ {limit} shown; there are more (raise --limit)[/]")


@app.command("list")
def list_requests(
    status: str = typer.Option("pending", help="pending, approved, denied, expired or all."),
    remote_: bool = _REMOTE,
    limit: int = typer.Option(100, "--limit", min=1, max=500, help="At most this many (--remote)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List approval requests (pending ones by default)."""
    if status not in _STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(_STATUSES)}", param_hint="--status")
    if _is_remote(remote_):
        _list_remote(status, limit, as_json)
        return
    requests = _store().list(None if status == "all" else status)
    if as_json:
        print_json([_as_dict(r) for r in requests])
        return
    if not requests:
        console.print(f"no {status if status != 'all' else ''} approval requests".replace("  ", " "))
        return
    table = _table()
    for r in requests:
        table.add_row(
            *_row(
                [
                    r.id,
                    escape(r.agent),
                    escape(r.tool),
                    _args(r.args),
                    escape(r.rule or ""),
                    state(r.status),
                    _when(r.created_ns),
                    _when(r.expires_ns),
                ]
            )
        )
    console.print(table)


def _decide_remote(request_id: str, approve: bool, comment: str | None, as_json: bool) -> None:
    with remote() as backend:
        answered: dict[str, Any] = backend.json(
            "POST", f"/v1/approvals/{request_id}/{'approve' if approve else 'deny'}", body={"comment": comment}
        )
    if as_json:
        print_json(answered)
        return
    console.print(
        f"[green]✓[/] {answered['status']} {answered['id']}: "
        f"{escape(answered['tool'])} {escape(str(answered['args']))} "
        f"of agent {escape(answered['agent'])}, as {answered['decided_by']} (signed by the backend; the agent "
        f"picks the answer up at its next check, and its next identical call {'runs' if approve else 'is refused'})"
    )


def _decide(request_id: str, approve: bool, comment: str | None, by: str | None, remote_: bool, as_json: bool) -> None:
    if _is_remote(remote_):
        if by:
            err.print("[yellow]![/] --by is ignored with the backend: it names the approver after your login")
        _decide_remote(request_id, approve, comment, as_json)
        return
    try:
        request = _store().decide(request_id, approve=approve, by=by or getpass.getuser(), comment=comment)
    except HashedError as exc:
        command = f"hashed approvals {'approve' if approve else 'deny'} {request_id} --remote"
        fail(
            str(exc),
            code=1,
            hint=f"list the requests: hashed approvals list --status all; one the backend holds: {command}",
        )
    if as_json:
        print_json(_as_dict(request))
        return
    verb = "approved" if approve else "denied"
    console.print(
        f"[green]✓[/] {verb} {request.id}: {request.tool} {request.args} "
        f"(the agent's next identical call {'runs' if approve else 'is refused'})"
    )


_COMMENT = typer.Option(None, "--comment", "-m")
_BY = typer.Option(None, help="Approver name (default: your user name; locally only).")
_DECISION_JSON = typer.Option(False, "--json", help="Print the answered request as JSON.")


_ID = typer.Argument(..., metavar="ID", help="The request's id (see hashed approvals list).")


@app.command()
def approve(
    request_id: str = _ID,
    comment: str | None = _COMMENT,
    by: str | None = _BY,
    remote_: bool = _REMOTE,
    as_json: bool = _DECISION_JSON,
) -> None:
    """Approve a pending request."""
    _decide(request_id, True, comment, by, remote_, as_json)


@app.command()
def deny(
    request_id: str = _ID,
    comment: str | None = _COMMENT,
    by: str | None = _BY,
    remote_: bool = _REMOTE,
    as_json: bool = _DECISION_JSON,
) -> None:
    """Deny a pending request."""
    _decide(request_id, False, comment, by, remote_, as_json)
