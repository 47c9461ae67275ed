"""`hashed people list | add | role | remove`: the people of the organisation and their roles (needs hashed login).

Roles: `owner` (everything, people included), `admin` (everything but owners), `viewer` (reads only). The backend
decides who may do what (docs/api.md, "People and roles"); this only asks it.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from hashed.cli._admin_client import remote
from hashed.cli._fmt import local_time
from hashed.cli._login import _password
from hashed.cli._output import console, print_json

__all__ = ["app"]

app = typer.Typer(help="The organisation's people and their roles (needs hashed login).", no_args_is_help=True)
ROLES = ("owner", "admin", "viewer")
JSON = typer.Option(False, "--json", help="Print JSON.")


def _role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"use one of {', '.join(ROLES)}", param_hint="ROLE")
    return value


def _table(people: list[dict[str, Any]]) -> Table:
    table = Table("id", "email", "role", "since")
    for person in people:
        table.add_row(person["id"], escape(person["email"]), person["role"], local_time(person.get("created_at")))
    return table


@app.command("list")
def list_people(as_json: bool = JSON) -> None:
    """List the organisation's people and their roles."""
    with remote() as backend:
        people: list[dict[str, Any]] = backend.json("GET", "/v1/users")
    if as_json:
        print_json(people)
    else:
        console.print(_table(people))


@app.command()
def add(
    email: str = typer.Argument(..., help="Their e-mail address (they log in with it)."),
    role: str = typer.Option("admin", "--role", help="owner, admin or viewer.", callback=_role),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read their first password from stdin."),
    as_json: bool = JSON,
) -> None:
    """Add a person with a first password (asked twice; they change it with hashed account password)."""
    password = _password(password_stdin=password_stdin, signup=True)
    with remote() as backend:
        person = backend.json("POST", "/v1/users", body={"email": email, "password": password, "role": role})
    if as_json:
        print_json(person)
    else:
        console.print(f"[green]✓[/] added {escape(person['email'])} as {person['role']} ({person['id']})")


@app.command("role")
def set_role(
    person_id: str = typer.Argument(..., metavar="ID", help="The person (see hashed people list)."),
    role: str = typer.Argument(..., metavar="ROLE", help="owner, admin or viewer.", callback=_role),
    as_json: bool = JSON,
) -> None:
    """Change a person's role (only an owner makes or unmakes owners; the last owner stays one)."""
    with remote() as backend:
        person = backend.json("PUT", f"/v1/users/{person_id}/role", body={"role": role})
    if as_json:
        print_json(person)
    else:
        console.print(f"[green]✓[/] {escape(person['email'])} is now {person['role']}")


@app.command()
def remove(
    person_id: str = typer.Argument(..., metavar="ID", help="The person (see hashed people list)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask first."),
) -> None:
    """Remove a person from the organisation: their sessions end at once."""
    if not yes:
        typer.confirm(f"remove {person_id} from the organisation?", abort=True)
    with remote() as backend:
        backend.request("DELETE", f"/v1/users/{person_id}")
    console.print(f"[green]✓[/] removed {person_id}; their sessions have ended")
