"""`hashed login | logout`: remember which backend to manage, and with which admin key.

With `--key`, the admin key is checked and stored. With `--email`, the password logs in a session, which
creates an admin key named after this machine; that key is stored (the session is ended at once), and
`hashed logout` revokes it again.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import sys

import typer

from hashed.cli._admin_client import AdminClient, fail_remote
from hashed.cli._credentials import (
    DEFAULT_URL,
    Credentials,
    delete_credentials,
    load_credentials,
    read_stored,
    save_credentials,
)
from hashed.cli._fmt import local_time
from hashed.cli._output import EXIT_USAGE, console, err, fail, print_json
from hashed.environment_variables import HASHED_ADMIN_KEY, HASHED_BACKEND_URL
from hashed.errors import BackendError, ConfigError

__all__ = ["MIN_PASSWORD", "login", "logout"]

MIN_PASSWORD = 10  # the backend's rule for a new account's password (a test checks they agree); it has the last word
DEFAULT_ORG = "My organisation"  # what `hashed login --signup` names the new organisation


def _default_url() -> str:
    try:
        stored = load_credentials()
    except ConfigError:
        stored = None
    return os.environ.get(HASHED_BACKEND_URL) or (stored.url if stored else DEFAULT_URL)


def _identify(client: AdminClient, key: str) -> dict[str, object]:
    """The admin key's own entry at the backend (found by its prefix): name, expiry, who made it."""
    kind = key.split("_")[1] if key.count("_") >= 2 else ""
    keys = client.json("GET", "/v1/keys")
    prefix_len = len(f"hashed_{kind}_") + 6
    found: dict[str, object] = next((k for k in keys if k["prefix"] == key[:prefix_len]), {})
    return found


def _login_with_password(
    client: AdminClient, url: str, email: str, password: str, days: float, org: str | None
) -> tuple[Credentials, list[str]]:
    """Log in, make an admin key of that organisation, log out.

    Also returns the names of the other organisations the same e-mail and password reach (each its own account:
    `--org` picks one).
    """
    body = {"email": email, "password": password} | ({"org": org} if org else {})
    me = client.json("POST", "/v1/auth/login", body=body)
    name = f"hashed-cli {getpass.getuser()}@{platform.node() or 'host'}"
    try:
        created = client.json("POST", "/v1/keys", body={"kind": "admin", "name": name, "expires_in_days": days})
    finally:
        client.request("POST", "/v1/auth/logout")
    others = [str(o["name"]) for o in me.get("orgs", []) if o["id"] != me["org"]["id"]]
    credentials = Credentials(
        url=url,
        admin_key=created["key"],
        key_id=created["id"],
        key_name=created["name"],
        email=me["user"]["email"],
        org=me["org"]["name"],
    )
    return credentials, others


def _retire(previous: Credentials) -> None:
    """Revoke the key an earlier `hashed login --email` made (with itself), now that this login replaces it."""
    with AdminClient(previous.url, previous.admin_key) as client:
        try:
            client.request("POST", f"/v1/keys/{previous.key_id}/revoke")
        except BackendError as exc:
            if exc.code not in ("key_revoked", "key_expired", "key_invalid"):  # else it no longer works anyway
                err.print(f"[yellow]![/] the key of your previous login ({previous.key_name}) still works: {exc}")
                err.print(f"[dim]→ revoke it: hashed keys revoke {previous.key_id}[/]")
            return
    err.print(f"[dim]revoked the key of your previous login ({previous.key_name} at {previous.url})[/]")


def _new_password() -> str:
    """A new account's password: its minimum stated up front, too short refused at once, then typed again."""
    while True:
        password = str(typer.prompt(f"choose a password (at least {MIN_PASSWORD} characters)", hide_input=True))
        if len(password) < MIN_PASSWORD:
            err.print(f"[yellow]![/] that has {len(password)} characters; the password needs at least {MIN_PASSWORD}")
        elif typer.prompt("type it again", hide_input=True) == password:
            return password
        else:
            err.print("[yellow]![/] the two differ: choose the password again")


def _password(*, password_stdin: bool, signup: bool) -> str:
    """From standard input, or prompted: once to log in; for a new account, twice and with its minimum stated."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif signup:
        password = _new_password()
    else:
        password = typer.prompt("password", hide_input=True)
    if not password.strip():
        fail("no password given", code=EXIT_USAGE, hint="pipe it in (--password-stdin) or type it at the prompt")
    if signup and len(password) < MIN_PASSWORD:
        fail(f"the password needs at least {MIN_PASSWORD} characters", code=EXIT_USAGE, hint="choose a longer one")
    return password


def _email_login(
    target: str, email: str, *, password_stdin: bool, signup: bool, org: str | None, days: float
) -> tuple[Credentials, list[str]]:
    password = _password(password_stdin=password_stdin, signup=signup)
    with AdminClient(target, None) as session:
        try:
            if signup:
                body = {"email": email, "password": password, "org_name": org or DEFAULT_ORG}
                org = session.json("POST", "/v1/auth/signup", body=body)["org"]["id"]  # log in to this one
                session.request("POST", "/v1/auth/logout")
            return _login_with_password(session, target, email, password, days, org)
        except BackendError as exc:
            if exc.code == "login_failed":
                fail(f"{exc}", code=1, hint="check the e-mail and password, or log in with --key")
            fail_remote(exc, target)


def login(
    url: str | None = typer.Option(None, "--url", help=f"Backend URL (default: $HASHED_BACKEND_URL or {DEFAULT_URL})."),
    key: str | None = typer.Option(None, "--key", help="Admin API key (hashed_admin_…); else prompted."),
    email: str | None = typer.Option(None, "--email", help="Log in with e-mail and password (prompted)."),
    signup: bool = typer.Option(
        False,
        "--signup",
        help=f"With --email: create the account and its organisation (password: {MIN_PASSWORD}+ characters).",
    ),
    org: str | None = typer.Option(
        None,
        "--org",
        help=f"With --signup: the new organisation's name (default '{DEFAULT_ORG}'). Else, when your e-mail has "
        "accounts in several organisations: which one (its name or id).",
    ),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    days: float = typer.Option(90, "--expires-in-days", help="With --email: lifetime of the admin key created."),
    as_json: bool = typer.Option(False, "--json", help="Print who you are as JSON."),
) -> None:
    """Store a backend URL and an admin credential in your config folder (never in the project)."""
    target = (url or _default_url()).rstrip("/")
    if key and email:
        fail("pass --key or --email, not both", code=2)
    if signup and not email:
        fail("--signup needs --email", code=2, hint="hashed login --signup --email you@example.com")
    if os.environ.get(HASHED_ADMIN_KEY):
        err.print(f"[yellow]![/] {HASHED_ADMIN_KEY} is set: it is used instead of this login until you unset it")
    if email:
        credentials, others = _email_login(
            target, email, password_stdin=password_stdin, signup=signup, org=org, days=days
        )
        secret = credentials.admin_key
    else:
        secret = key or typer.prompt("admin API key", hide_input=True)
        if secret.startswith("hashed_agent_"):
            fail("that is an agent key", code=2, hint="log in with an admin key (hashed_admin_…) or --email")
    with AdminClient(target, secret) as client:
        try:
            me = _identify(client, secret)
        except BackendError as exc:
            fail_remote(exc, target)
    if not email:
        others = []
        credentials = Credentials(url=target, admin_key=secret, key_name=str(me.get("name") or "") or None)
    with contextlib.suppress(ConfigError):
        previous = read_stored()
        if previous is not None and previous.key_id and previous.key_id != credentials.key_id:
            _retire(previous)
    path = save_credentials(credentials)
    who = {
        "url": target,
        "email": credentials.email,
        "org": credentials.org,
        "key_id": me.get("id"),
        "key_name": me.get("name"),
        "key_prefix": me.get("prefix"),
        "expires_at": me.get("expires_at"),
        "created_key": credentials.created_by_login,
        "other_orgs": others,
        "stored_in": str(path),
    }
    if as_json:
        print_json(who)
        return
    person = f"{credentials.email} ({credentials.org})" if credentials.email else f"admin key '{me.get('name')}'"
    console.print(f"[green]✓[/] logged in to {target} as {person}")
    if credentials.created_by_login:
        console.print(
            f"  created admin key '{credentials.key_name}' ({me.get('prefix')}…, "
            f"expires {local_time(str(me.get('expires_at') or ''))}) "
            "and stored it; the password is not stored. `hashed logout` revokes this key."
        )
    console.print(f"  credentials in {path} (mode 600)")
    if others:
        console.print(
            f"  the same e-mail and password also reach: {', '.join(others)} (log in with --org NAME to manage one)"
        )


def logout(
    keep_key: bool = typer.Option(False, "--keep-key", help="Do not revoke the key `hashed login --email` created."),
) -> None:
    """Forget the stored login (and revoke the admin key that `hashed login --email` created for it)."""
    try:
        stored = read_stored()
    except ConfigError:
        stored = None  # unreadable: remove it all the same
    if stored is not None and stored.key_id and not keep_key:
        with AdminClient(stored.url, stored.admin_key) as client:
            try:
                client.request("POST", f"/v1/keys/{stored.key_id}/revoke")
                console.print(f"[green]✓[/] revoked admin key '{stored.key_name}' at {stored.url}")
            except BackendError as exc:
                err.print(f"[yellow]![/] could not revoke the key at {stored.url}: {exc}")
                err.print(f"[dim]→ revoke it later: hashed keys revoke {stored.key_id}[/]")
    removed = delete_credentials()
    if removed is None:
        console.print("not logged in (nothing to remove)")
    else:
        console.print(f"[green]✓[/] removed {removed}")
    if os.environ.get(HASHED_ADMIN_KEY):
        err.print(f"[yellow]![/] {HASHED_ADMIN_KEY} is still set in this environment")
