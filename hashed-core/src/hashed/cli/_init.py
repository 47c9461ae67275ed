"""`hashed init`: a project folder with config, a commented starter policy and an encrypted agent key.

Running it again never dead-ends: an existing key is kept (only `--force` replaces it), missing files are added,
and `--connect` connects a project made earlier.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import typer
from rich.markup import escape

from hashed.cli._output import EXIT_SETUP, console, err, fail
from hashed.cli._starter import CONFIG, GITIGNORE, GITIGNORE_LINES, STARTER_POLICY
from hashed.config import HashedSettings
from hashed.errors import BackendError, HashedError
from hashed.identity import Identity, read_public_key, save_identity

_BACKEND_URL_LINE = re.compile(r"^\s*backend_url\s*=")


def init(
    home: Path = typer.Option(Path(".hashed"), "--home", envvar="HASHED_HOME", help="Project folder to create."),
    agent: str = typer.Option("", "--agent", help="Agent name (default: the current folder's name)."),
    force: bool = typer.Option(False, "--force", help="Replace the key and the starter files (the old key is lost)."),
    connect: bool = typer.Option(False, "--connect", help="Also connect to the backend you logged in to."),
) -> None:
    """Create .hashed/ (config, starter policy, encrypted agent key) and keep its secrets out of git.

    Run it again to add what is missing: an existing key is kept unless --force. With --connect (after
    `hashed login`): make an agent API key at the backend, point the config at it, and push the starter policy
    if the organisation has none yet; this also connects a project made earlier.
    """
    if connect:
        from hashed.cli._admin_client import has_login

        if not has_login():  # before anything is written: nothing to undo
            fail("--connect needs a backend login", code=EXIT_SETUP, hint="hashed login --url URL, then run this again")
    try:
        home.mkdir(parents=True, exist_ok=True)
        name = _agent_name(home, agent, force)
        _key(home, force)
        written = _starter_files(home, name, force)
        (home / ".gitignore").write_text(GITIGNORE)
        ignored = _ignore_in_repo(home)
    except OSError as exc:
        fail(f"cannot write {home}: {exc}", code=EXIT_SETUP, hint="check the folder's permissions, or set --home")
    if written:
        console.print(
            f"[green]✓[/] wrote {', '.join(written)} in {escape(str(home))}/ for agent [bold]{escape(name)}[/]"
        )
    if ignored:
        console.print(f"[green]✓[/] added the secrets to {escape(str(ignored))}")
    if connect:
        _connect(home, name)
        console.print(
            '\nNext: guard a function ([bold]@Hashed().guard("transfer_money")[/]) or an agent framework '
            "([bold]hashed run -- python agent.py[/]); its records go to the backend."
        )
        return
    if not written:
        console.print(f"{escape(str(home))}/ is set up already (agent {escape(name)}): nothing to add")
        return
    console.print(
        f"\nNext:\n  1. edit the policy ({escape(str(home))}/policy.yaml), then: [bold]hashed policy validate[/]\n"
        '  2. guard a function:         [bold]@Hashed().guard("transfer_money")[/]\n'
        "  3. guard an agent framework: [bold]hashed run -- python agent.py[/]"
    )


def _agent_name(home: Path, agent: str, force: bool) -> str:
    """The name in an existing config.toml (kept unless --force), else --agent, else the folder's name."""
    if (home / "config.toml").exists() and not force:
        try:
            configured = HashedSettings.load(home).agent
        except HashedError as exc:
            fail(str(exc), hint=f"fix {home}/config.toml, or replace it: hashed init --force (makes a new key)")
        if agent and agent != configured:
            err.print(
                f"[yellow]![/] {escape(str(home))}/config.toml names agent {escape(configured)}: kept "
                f"(edit its `agent` line to rename it to {escape(agent)})"
            )
        return configured
    return agent or Path.cwd().name or "agent"


def _key(home: Path, force: bool) -> None:
    """Keep the agent key there is (unless --force), or make one (encrypted, mode 600), and say which."""
    key_path = home / "agent.key"
    if key_path.exists() and not force:
        try:
            public_key = read_public_key(key_path)
        except HashedError as exc:
            fail(str(exc), code=EXIT_SETUP, hint="restore it from a backup, or: hashed init --force (a new key)")
        console.print(
            f"[green]✓[/] kept the agent key in {escape(str(key_path))} (public key {public_key[:16]}…; "
            "--force makes a new one, and the old one is lost)"
        )
        return
    passphrase = os.environ.get("HASHED_KEY_PASSPHRASE")
    if not passphrase:
        passphrase = secrets.token_urlsafe(32)
        fd = os.open(home / "key.passphrase", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(passphrase + "\n")
        console.print(
            f"[yellow]![/] the key passphrase is in {escape(str(home))}/key.passphrase (mode 600, git-ignored). "
            "In production, keep it in your secret store as HASHED_KEY_PASSPHRASE and delete the file."
        )
    identity = Identity.generate()
    save_identity(identity, key_path, passphrase)
    console.print(
        f"[green]✓[/] made a new agent key in {escape(str(key_path))} (public key {identity.public_key[:16]}…)"
    )


def _starter_files(home: Path, name: str, force: bool) -> list[str]:
    """Write policy.yaml and config.toml where missing (or with --force); the names of those written."""
    written = []
    for filename, text in (("policy.yaml", STARTER_POLICY), ("config.toml", CONFIG.format(agent=json.dumps(name)))):
        target = home / filename
        if force or not target.exists():
            target.write_text(text)
            written.append(filename)
    return written


def _ignore_in_repo(home: Path) -> Path | None:
    """Add the secret paths to the enclosing project's .gitignore (once)."""
    root = home.resolve().parent
    gitignore = root / ".gitignore"
    prefix = home.resolve().relative_to(root).as_posix()
    lines = [line.replace(".hashed", prefix, 1) for line in GITIGNORE_LINES]
    existing = gitignore.read_text().splitlines() if gitignore.exists() else []
    missing = [line for line in lines if line not in existing]
    if not missing:
        return None
    with gitignore.open("a") as handle:
        if existing and existing[-1].strip():
            handle.write("\n")
        handle.write("# hashed: agent secrets and ledger\n" + "\n".join(missing) + "\n")
    return gitignore


def _connect(home: Path, agent: str) -> None:
    """Create this agent's API key at the logged-in backend and write what the agent needs to reach it."""
    from hashed.cli._admin_client import remote

    with remote() as client:
        created = client.json("POST", "/v1/keys", body={"kind": "agent", "name": agent})
        try:
            client.json("GET", "/v1/policies/org")
            pushed = False
        except BackendError as exc:
            if exc.code != "policy_missing":
                raise
            client.json(
                "PUT",
                "/v1/policies/org",
                body={"yaml": (home / "policy.yaml").read_text(), "comment": "starter policy from hashed init"},
            )
            pushed = True
        url = client.url
    replaced = (home / "api.key").exists()
    fd = os.open(home / "api.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(created["key"]) + "\n")
    config = home / "config.toml"
    kept = [line for line in config.read_text().splitlines() if not _BACKEND_URL_LINE.match(line)]
    kept.append(f'backend_url = "{url}"   # the agent API key is in api.key (git-ignored)')
    config.write_text("\n".join(kept) + "\n")
    console.print(f"[green]✓[/] connected to {url}: agent API key {created['prefix']}… in {home}/api.key (mode 600)")
    if replaced:
        console.print("  it replaces the key api.key held, which still works until revoked (see: hashed keys list)")
    if pushed:
        console.print(
            "[green]✓[/] the organisation had no policy: pushed the starter policy (edit it, then: hashed policy push)"
        )
    else:
        console.print("  the organisation's policy at the backend applies (see it with: hashed policy pull)")
