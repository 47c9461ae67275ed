"""`hashed keys create | list | rotate | revoke`: the organisation's API keys (admin and agent)."""

from __future__ import annotations

import getpass
from typing import Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from hashed.cli._admin_client import remote
from hashed.cli._fmt import duration, local_time, state
from hashed.cli._output import console, err, print_json

__all__ = ["app", "key_table"]

app = typer.Typer(help="Create, list, rotate and revoke API keys (needs hashed login).", no_args_is_help=True)


def key_table(keys: list[dict[str, Any]]) -> Table:
    """Keys as a table (never their secrets: the backend does not have them); more columns on wide terminals."""
    wide = console.width >= 140
    columns: list[Column | str] = [Column("id", no_wrap=True), "kind", "name", Column("status", no_wrap=True)]
    columns += [Column("prefix", no_wrap=True), "created", "by"] if wide else []
    table = Table(*columns, Column("until", no_wrap=True))
    for key in keys:
        row = [key["id"], key["kind"], escape(key["name"]), state(key["status"])]
        if wide:
            row += [f"{key['prefix']}…", local_time(key.get("created_at")), escape(key.get("created_by") or "")]
        until = key.get("revoked_at") or key.get("expires_at")
        row.append(local_time(until) if wide else local_time(until)[:10])
        table.add_row(*row)
    return table


def show_secret(created: dict[str, Any], verb: str = "created") -> None:
    """Print a new key's secret once, with where it goes."""
    console.print(f"[green]✓[/] {verb} {created['kind']} key '{created['name']}' ({created['id']})")
    console.print(f"\n    {created['key']}\n")
    err.print("[yellow]![/] this is the only time the key is shown: store it in your secret manager now")
    if created["kind"] == "agent":
        err.print("[dim]→ agents read it from HASHED_API_KEY (with HASHED_BACKEND_URL)[/]")
    else:
        err.print("[dim]→ use it with: hashed login --key …, or HASHED_ADMIN_KEY in scripts[/]")


@app.command()
def create(
    kind: str = typer.Option("admin", "--kind", help="admin (people, scripts) or agent (agents ship with it)."),
    name: str | None = typer.Option(None, "--name", help="To recognise it by (default: kind, your user)."),
    expires_in_days: float | None = typer.Option(None, "--expires-in-days", help="Lifetime (default 90)."),
    rate: float | None = typer.Option(None, "--rate", help="Requests per second allowed to this key."),
    as_json: bool = typer.Option(False, "--json", help="Print the new key (with its secret) as JSON."),
) -> None:
    """Create an API key; its secret is shown this once."""
    if kind not in ("admin", "agent"):
        raise typer.BadParameter("use admin or agent", param_hint="--kind")
    body = {
        "kind": kind,
        "name": name or f"{kind} key of {getpass.getuser()}",
        "expires_in_days": expires_in_days,
        "rate_per_s": rate,
    }
    with remote() as backend:
        created = backend.json("POST", "/v1/keys", body={k: v for k, v in body.items() if v is not None})
    if as_json:
        print_json(created)
    else:
        show_secret(created)


@app.command("list")
def list_keys(
    active: bool = typer.Option(False, "--active", help="Only keys that still work."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the organisation's keys (newest first), with their status and expiry."""
    with remote() as backend:
        keys = backend.json("GET", "/v1/keys")
    if active:
        keys = [k for k in keys if k["status"] == "active"]
    if as_json:
        print_json(keys)
    elif not keys:
        console.print("no API keys" + (" active" if active else ""))
    else:
        console.print(key_table(keys))


@app.command()
def rotate(
    key_id: str = typer.Argument(..., metavar="ID", help="The key to replace (see hashed keys list)."),
    overlap: str = typer.Option("1h", "--overlap", help="How long the old key keeps working: 0, 90s, 15m, 1h, 2d."),
    expires_in_days: float | None = typer.Option(None, "--expires-in-days", help="Lifetime of the new key."),
    as_json: bool = typer.Option(False, "--json", help="Print the old and new key (with its secret) as JSON."),
) -> None:
    """Make a new key of the same kind and name; the old one keeps working for the overlap, then expires."""
    body: dict[str, Any] = {"overlap_seconds": duration(overlap, "--overlap")}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    with remote() as backend:
        rotated = backend.json("POST", f"/v1/keys/{key_id}/rotate", body=body)
    if as_json:
        print_json(rotated)
        return
    show_secret(rotated["new"], "rotated: new")
    old = rotated["old"]
    console.print(f"the old key {old['id']} ({old['prefix']}…) stops working at {local_time(old['expires_at'])}")


@app.command()
def revoke(
    key_id: str = typer.Argument(..., metavar="ID", help="The key to revoke (see hashed keys list)."),
    as_json: bool = typer.Option(False, "--json", help="Print the revoked key as JSON."),
) -> None:
    """Revoke a key now: every later request with it is refused (401 key_revoked)."""
    with remote() as backend:
        revoked = backend.json("POST", f"/v1/keys/{key_id}/revoke")
    if as_json:
        print_json(revoked)
    else:
        console.print(f"[green]✓[/] revoked {revoked['kind']} key '{revoked['name']}' ({revoked['prefix']}…)")
