"""`hashed agent list | show | create | delete | rotate-key`: the agents a backend knows, and this one's key.

Agents register themselves: an agent configured with a backend URL and an agent API key proves its Ed25519
key to the backend on first contact. `create` therefore makes the API key an agent needs, not the agent.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Column, Table

from hashed.cli._admin_client import remote
from hashed.cli._fmt import local_time, state
from hashed.cli._output import EXIT_CHECK_FAILED, console, err, fail, print_json
from hashed.cli._project import project
from hashed.cli._remote_policy import can_ask
from hashed.environment_variables import HASHED_AGENT, HASHED_API_KEY, HASHED_BACKEND_URL
from hashed.errors import HashedError

__all__ = ["app"]

app = typer.Typer(help="Agents at the backend, and this agent's key.", no_args_is_help=True)


@app.command("list")
def list_agents(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the organisation's agents with their chain head."""
    with remote() as backend:
        agents = backend.json("GET", "/v1/agents")
    if as_json:
        print_json(agents)
        return
    if not agents:
        console.print("no agents yet (an agent registers itself the first time it ships: hashed agent create NAME)")
        return
    wide = console.width >= 120
    extra = ["public key", "registered"] if wide else []
    table = Table(Column("id", no_wrap=True), "name", *extra, Column("records", justify="right"), "status")
    for agent in agents:
        more = [f"{agent['public_key'][:16]}…", local_time(agent.get("created_at"))] if wide else []
        table.add_row(
            agent["id"],
            escape(agent["name"]),
            *more,
            str(agent["head"]["seq"]),
            state("disabled" if agent.get("disabled_at") else "active"),
        )
    console.print(table)


@app.command()
def show(
    agent: str = typer.Argument(..., metavar="AGENT", help="Agent id or name."),
    verify: bool = typer.Option(False, "--verify", help="Re-verify every stored record at the backend now."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show an agent's chain at the backend: verified head, gaps, quarantined records, keys."""
    with remote() as backend:
        agent_id = backend.agent_id(agent)
        chain = backend.json("GET", f"/v1/agents/{agent_id}/chain", params={"verify": "true" if verify else None})
    if as_json:
        print_json(chain)
    else:
        console.print(f"[bold]{chain['name']}[/] ({chain['agent_id']})")
        console.print(f"  records      {chain['records']}, verified through seq {chain['verified_seq']}")
        console.print(f"  head         seq {chain['head']['seq']}, {chain['head']['hash'][:16]}…")
        gaps = ", ".join(f"{g['first']}–{g['last']}" for g in chain["gaps"]) or "none"
        console.print(f"  missing      {gaps}")
        console.print(f"  quarantined  {chain['quarantined']}")
        for index, key in enumerate(chain["keys"]):
            console.print(f"  {'key' if index == 0 else 'rotated to':<12} {key}")
        if verify:
            result = "[green]✓ every record verifies[/]" if not chain["error"] else f"[red]✗ {chain['error']}[/]"
            console.print(f"  re-verified  {result}")
    if verify and chain["error"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def create(
    name: str = typer.Argument(..., help="The agent's name (its HASHED_AGENT; policies match it)."),
    expires_in_days: float | None = typer.Option(None, "--expires-in-days", help="Lifetime of the key (default 90)."),
    as_json: bool = typer.Option(False, "--json", help="Print the key and environment as JSON."),
) -> None:
    """Make the API key an agent needs, and print the environment to run it with (shown once)."""
    body: dict[str, object] = {"kind": "agent", "name": name}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    with remote() as backend:
        created = backend.json("POST", "/v1/keys", body=body)
        url = backend.url
    environment = {HASHED_BACKEND_URL: url, HASHED_API_KEY: created["key"], HASHED_AGENT: name}
    if as_json:
        print_json({"key": created, "environment": environment})
        return
    err.print(f"[green]✓[/] agent key '{name}' created ({created['id']}, expires {local_time(created['expires_at'])})")
    err.print("  run the agent with this environment (the key is shown only now; keep it in your secret store):\n")
    for variable, value in environment.items():
        typer.echo(f"{variable}={value}")  # plain: `hashed agent create NAME > agent.env` is an env file
    err.print(
        "\n  The agent registers itself with its Ed25519 key on first contact (hashed init makes the key);"
        "\n  then it appears in: hashed agent list"
    )


@app.command()
def delete(
    agent: str = typer.Argument(..., metavar="AGENT", help="Agent id or name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print the disabled agent as JSON."),
) -> None:
    """Disable an agent: the backend refuses its requests from now on; its records stay."""
    with remote() as backend:
        agent_id = backend.agent_id(agent)
        if not yes:
            if not can_ask():
                fail(f"disabling agent {agent} needs confirmation", code=2, hint="pass --yes")
            typer.confirm(f"disable agent {agent} ({agent_id})? Its requests will be refused", abort=True)
        disabled = backend.json("DELETE", f"/v1/agents/{agent_id}")
    if as_json:
        print_json(disabled)
    else:
        console.print(f"[green]✓[/] disabled agent {disabled['name']} ({disabled['id']}); its records are kept")


def rotate_key(as_json: bool = typer.Option(False, "--json", help="Print the old and new keys as JSON.")) -> None:
    """Replace this agent's key (in .hashed/): the old key signs the new one into the ledger."""
    from hashed._core import Hashed  # the whole core, only for this command

    settings = project()
    try:
        with Hashed(settings=settings) as hashed:
            old = hashed.public_key
            new = hashed.rotate_key().public_key
            hashed.flush()
            seq = hashed.ledger.head()[0]
    except HashedError as exc:
        fail(str(exc), hint="run this where the agent runs (its .hashed/ folder), or set HASHED_HOME")
    if as_json:
        print_json({"old_key": old, "new_key": new, "rotation_seq": seq, "backend": settings.backend_url})
        return
    console.print(f"[green]✓[/] rotated the key of agent {settings.agent}: {old[:16]}… → {new[:16]}…")
    console.print(f"  the old key signed a key_rotation record into {settings.ledger_path}")
    if settings.backend_url:
        console.print(
            f"  the backend ({settings.backend_url}) learns the new key from that record when it is shipped; "
            "check with: hashed status (unshipped) and hashed agent show NAME"
        )
    else:
        console.print("  no backend is configured: anyone verifying this ledger follows the rotation record")
