"""`hashed witness init | add-log | serve | evidence`: run a transparency-log witness (C2SP tlog-witness)."""

from __future__ import annotations

import os
from pathlib import Path

import nacl.utils
import typer

from hashed.cli._output import EXIT_CHECK_FAILED, console, fail
from hashed.errors import NoteError
from hashed.identity import Identity
from hashed.protocol import COSIGNATURE_V1, NoteVerifier, parse_signer_key, signer_key
from hashed.witness import WitnessServer, WitnessStore

__all__ = ["app"]

app = typer.Typer(help="Run a witness: it cosigns an agent's checkpoints only if they extend what it saw.")

KEY = typer.Option(Path(".hashed/witness.key"), "--key", help="The witness's private key file.")
DB = typer.Option(Path(".hashed/witness.db"), "--db", help="The witness's database.")


def _load(key: Path) -> tuple[str, Identity]:
    try:
        name, seed = parse_signer_key(key.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {key}: {exc.strerror}", hint="create one: hashed witness init --name <name>")
    except NoteError as exc:
        fail(f"{key}: {exc}", hint="create one: hashed witness init --name <name>")
    return name, Identity.from_seed(seed)


def _vkey(name: str, identity: Identity) -> str:
    return NoteVerifier(name, bytes.fromhex(identity.public_key), COSIGNATURE_V1).vkey


@app.command()
def init(
    name: str = typer.Option(..., help="The witness's name, e.g. witness.example.com/w1 (no spaces, no '+')."),
    key: Path = KEY,
) -> None:
    """Create the witness key (mode 0600) and print its verifier key for the logs and auditors that trust it."""
    if key.exists():
        fail(f"{key} exists", hint="keep it (its verifier key: hashed witness init prints it once) or pass --key")
    seed = nacl.utils.random(32)
    try:
        text = signer_key(name, seed)
    except NoteError as exc:
        fail(str(exc), code=2)
    key.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    console.print(f"[green]✓[/] witness key written to {key}; its verifier key:")
    typer.echo(_vkey(name, Identity.from_seed(seed)))


@app.command("add-log")
def add_log(
    vkey: str = typer.Argument(..., help="The log's verifier key (an agent's: name+id+key, name = its origin)."),
    origin: str = typer.Option(None, help="The log's origin, when it is not the key name."),
    db: Path = DB,
) -> None:
    """Trust a log's key: the witness cosigns checkpoints of this origin signed by it."""
    store = WitnessStore(db)
    try:
        added = store.add_log(vkey, origin)
    except NoteError as exc:
        fail(str(exc), code=2, hint="an agent's verifier key is printed by: hashed proof key")
    finally:
        store.close()
    console.print(f"[green]✓[/] trusting {added}")


@app.command()
def serve(
    key: Path = KEY,
    db: Path = DB,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8410, help="Port to listen on (0: any free port)."),
) -> None:
    """Serve POST /add-checkpoint (and GET /checkpoint/<origin>) until interrupted."""
    name, identity = _load(key)
    store = WitnessStore(db)
    if not store.logs():
        console.print("[yellow]![/] no log is trusted yet: every checkpoint gets 404 (hashed witness add-log VKEY)")
    server = WitnessServer((host, port), name, identity, store)
    console.print(f"witness {name} at {server.url}, verifier key {_vkey(name, identity)}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()


@app.command()
def evidence(db: Path = DB) -> None:
    """Print the signed checkpoints kept as evidence of a log showing two histories; exit 1 if there are any."""
    store = WitnessStore(db)
    try:
        rows = store.evidence()
    finally:
        store.close()
    if not rows:
        console.print("[green]✓[/] no evidence of a split view")
        return
    for origin, kind, detail, held, offered, proof, at in rows:
        typer.echo(f"{kind} of {origin} at {at}: {detail}\n\nheld:\n{held}\noffered:\n{offered}\nproof:\n{proof}")
    raise typer.Exit(EXIT_CHECK_FAILED)
