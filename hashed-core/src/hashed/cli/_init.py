"""`hashed init`: a new project folder with config, a commented starter policy and an encrypted agent key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer

from hashed.cli._output import console, fail
from hashed.errors import BackendError
from hashed.identity import Identity, save_identity

STARTER_POLICY = """\
# Hashed policy: which tool calls this agent may make. Reference: docs/policy.md
# Check it with `hashed policy validate`, try calls with `hashed policy test --call 'send_email {"to": "a@b.c"}'`.
version: 1
default: deny          # a call no rule allows is refused
mode: enforce          # `shadow` records decisions but never blocks: use it to roll out a new policy

redact: [password, api_key, token]   # argument names masked before they are stored

rules:
  # Reading is always fine.
  - id: read-only
    tools: ["get_*", "search_*", "read_*"]
    effect: allow

  # Money moves in small amounts; big ones need a person; at most 10 transfers an hour, 5,000 a day.
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000, window: {per: 1d, max_sum: 5000}}
    rate: {per: 1h, max_calls: 10}
    approval: {when: {amount: {gt: 500}}, timeout: 15m, on_timeout: deny}

  # Mail goes to our own domain only, 20 an hour.
  - id: internal-mail
    tools: [send_email]
    effect: allow
    when:
      to: {domain_in: [example.com]}
    rate: {per: 1h, max_calls: 20}

  # Deny always wins over allow.
  - id: never-delete
    tools: ["delete_*", "drop_*"]
    effect: deny
    reason: Agents never delete data.
"""

CONFIG = """\
# Hashed settings for this project. Every key can also be set as HASHED_<KEY> in the environment.
agent = "{agent}"
durability = "durable"     # nothing lost on a crash; "immediate": in SQLite at once; "background": may lose the last ms
strict = false             # true: raise PolicyDenied instead of returning a refusal
"""

GITIGNORE_LINES = [".hashed/agent.key*", ".hashed/key.passphrase", ".hashed/api.key", ".hashed/ledger.db*"]


def init(
    home: Path = typer.Option(Path(".hashed"), envvar="HASHED_HOME", help="Project folder to create."),
    agent: str = typer.Option("", help="Agent name (default: the current folder's name)."),
    force: bool = typer.Option(False, "--force", help="Replace the key and starter files if they exist."),
    connect: bool = typer.Option(False, "--connect", help="Also connect to the backend you logged in to."),
) -> None:
    """Create .hashed/ (config, starter policy, encrypted agent key) and keep its secrets out of git.

    With --connect (after `hashed login`): make an agent API key at the backend, point the config at it, and
    push the starter policy if the organisation has none yet.
    """
    name = agent or Path.cwd().name or "agent"
    key_path = home / "agent.key"
    if key_path.exists() and not force:
        fail(f"{home} already has an agent key", code=1, hint="use --force to make a new one (the old key is lost)")
    home.mkdir(parents=True, exist_ok=True)
    passphrase = os.environ.get("HASHED_KEY_PASSPHRASE")
    wrote_passphrase = False
    if not passphrase:
        passphrase = secrets.token_urlsafe(32)
        path = home / "key.passphrase"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(passphrase + "\n")
        wrote_passphrase = True
    identity = Identity.generate()
    save_identity(identity, key_path, passphrase)
    for filename, text in (("policy.yaml", STARTER_POLICY), ("config.toml", CONFIG.format(agent=name))):
        target = home / filename
        if force or not target.exists():
            target.write_text(text)
    (home / ".gitignore").write_text(
        "# written by hashed init: secrets and the ledger stay out of git\n"
        "agent.key*\nkey.passphrase\napi.key\nledger.db*\npolicy.remote.*\n"
    )
    ignored = _ignore_in_repo(home)
    console.print(f"[green]✓[/] created {home}/ for agent [bold]{name}[/] (public key {identity.public_key[:16]}…)")
    if wrote_passphrase:
        console.print(
            f"[yellow]![/] the key passphrase is in {home}/key.passphrase (mode 600, git-ignored). "
            "In production, keep it in your secret store as HASHED_KEY_PASSPHRASE and delete the file."
        )
    if ignored:
        console.print(f"[green]✓[/] added the secrets to {ignored}")
    if connect:
        _connect(home, name)
        console.print(
            '\nNext: guard a function ([bold]@Hashed().guard("transfer_money")[/]) or an agent framework '
            "([bold]hashed run -- python agent.py[/]); its records go to the backend."
        )
        return
    console.print(
        "\nNext:\n  1. edit the policy:        [bold]hashed policy validate[/]\n"
        '  2. guard a function:        [bold]@Hashed().guard("transfer_money")[/]\n'
        "  3. guard an agent framework: [bold]hashed run -- python agent.py[/]"
    )


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
    fd = os.open(home / "api.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(created["key"]) + "\n")
    config = home / "config.toml"
    config.write_text(config.read_text() + f'backend_url = "{url}"   # the agent API key is in api.key (git-ignored)\n')
    console.print(f"[green]✓[/] connected to {url}: agent API key {created['prefix']}… in {home}/api.key (mode 600)")
    if pushed:
        console.print(
            "[green]✓[/] the organisation had no policy: pushed the starter policy (edit it, then: hashed policy push)"
        )
    else:
        console.print("  the organisation's policy at the backend applies (see it with: hashed policy pull)")
