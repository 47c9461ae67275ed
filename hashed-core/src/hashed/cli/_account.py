"""`hashed account password | sessions | end-session`: a person's own password and log-in sessions.

These act on a person, not on an organisation, so an admin key (what `hashed login` stores) cannot do them: each
command logs in with the e-mail and password for its one request and logs out again, as the dashboard's People
page would. The e-mail defaults to the one `hashed login --email` stored.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from hashed.cli._admin_client import AdminClient, fail_remote
from hashed.cli._credentials import read_stored
from hashed.cli._fmt import local_time
from hashed.cli._login import MIN_PASSWORD, _default_url, _new_password, _password
from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_USAGE, console, err, fail, print_json
from hashed.errors import BackendError, ConfigError

__all__ = ["app"]

app = typer.Typer(help="Your own password and log-in sessions (asks for your password).", no_args_is_help=True)

URL = typer.Option(None, "--url", help="Backend URL (default: your login's, else $HASHED_BACKEND_URL).")
EMAIL = typer.Option(None, "--email", help="Your e-mail (default: the one `hashed login --email` stored).")
ORG = typer.Option(None, "--org", help="When your e-mail has accounts in several organisations: which one.")
STDIN = typer.Option(False, "--password-stdin", help="Read the password(s) from standard input, one per line.")
JSON = typer.Option(False, "--json", help="Print JSON.")


def _whom(url: str | None, email: str | None) -> tuple[str, str]:
    """The backend and e-mail to log in with: given, else the stored login's."""
    with contextlib.suppress(ConfigError):
        stored = read_stored()
        if stored is not None:
            url = url or stored.url
            email = email or stored.email
    if not email:
        fail(
            "which account? no e-mail given", code=EXIT_USAGE, hint="pass --email (or log in with hashed login --email)"
        )
    return (url or _default_url()).rstrip("/"), email


@contextlib.contextmanager
def _logged_in(url: str, email: str, password: str, org: str | None) -> Iterator[tuple[AdminClient, dict[str, Any]]]:
    """A session for the command's requests, ended when they are done; backend errors end the command."""
    with AdminClient(url, None) as client:
        try:
            me = client.json(
                "POST", "/v1/auth/login", body={"email": email, "password": password} | ({"org": org} if org else {})
            )
        except BackendError as exc:
            if exc.code == "login_failed":
                fail(f"{exc}", code=EXIT_CHECK_FAILED, hint="check the e-mail and password")
            fail_remote(exc, url)
        try:
            yield client, me
        except BackendError as exc:
            fail_remote(exc, url)
        finally:
            with contextlib.suppress(BackendError):
                client.request("POST", "/v1/auth/logout")


@app.command()
def password(
    url: str | None = URL, email: str | None = EMAIL, org: str | None = ORG, password_stdin: bool = STDIN
) -> None:
    """Change your password: asks the current one, then the new one twice. Your other sessions end."""
    target, who = _whom(url, email)
    if password_stdin:
        current = sys.stdin.readline().rstrip("\n")
        new = sys.stdin.readline().rstrip("\n")
        if not current or not new:
            fail("give the current and the new password on two lines of standard input", code=EXIT_USAGE)
        if len(new) < MIN_PASSWORD:
            fail(
                f"the new password needs at least {MIN_PASSWORD} characters",
                code=EXIT_USAGE,
                hint="choose a longer one",
            )
    else:
        current = str(typer.prompt("current password", hide_input=True))
        new = _new_password()
    with _logged_in(target, who, current, org) as (client, me):
        try:
            client.request("POST", "/v1/auth/password", body={"current_password": current, "new_password": new})
        except BackendError as exc:
            if exc.code == "invalid_request":  # the backend's rules for a new password
                fail(f"the new password was refused: {exc}", code=EXIT_USAGE, hint="choose a longer one")
            raise
    console.print(f"[green]✓[/] changed the password of {escape(who)} ({escape(me['org']['name'])}) at {target}")
    console.print("  your other sessions have ended; admin keys (such as the one `hashed login` stored) still work")


def _sessions(client: AdminClient) -> list[dict[str, Any]]:
    """The person's live sessions but this command's own, which ends with it."""
    return [s for s in client.json("GET", "/v1/auth/sessions") if not s["current"]]


@app.command()
def sessions(
    url: str | None = URL,
    email: str | None = EMAIL,
    org: str | None = ORG,
    password_stdin: bool = STDIN,
    as_json: bool = JSON,
) -> None:
    """List your live log-in sessions (dashboard, other machines), newest first."""
    target, who = _whom(url, email)
    with _logged_in(target, who, _password(password_stdin=password_stdin, signup=False), org) as (client, _):
        live = _sessions(client)
    if as_json:
        print_json(live)
        return
    if not live:
        console.print(f"no other live sessions of {escape(who)}")
        return
    table = Table("id", "started", "expires")
    for entry in live:
        table.add_row(entry["id"], local_time(entry["created_at"]), local_time(entry["expires_at"]))
    console.print(table)
    err.print("[dim]→ end one: hashed account end-session ID (or --all)[/]")


@app.command("end-session")
def end_session(
    session_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Sessions to end (hashed account sessions)."),
    every: bool = typer.Option(False, "--all", help="End every other session of yours."),
    url: str | None = URL,
    email: str | None = EMAIL,
    org: str | None = ORG,
    password_stdin: bool = STDIN,
) -> None:
    """End log-in sessions of yours (a lost laptop, a shared browser): they are logged out at once."""
    if bool(session_ids) == every:
        fail("name the sessions to end, or pass --all", code=EXIT_USAGE, hint="list them: hashed account sessions")
    target, who = _whom(url, email)
    with _logged_in(target, who, _password(password_stdin=password_stdin, signup=False), org) as (client, _):
        ids = [s["id"] for s in _sessions(client)] if every else list(session_ids)
        for session_id in ids:
            client.request("POST", f"/v1/auth/sessions/{session_id}/revoke")
    console.print(f"[green]✓[/] ended {len(ids)} session{'s' if len(ids) != 1 else ''} of {escape(who)}")
