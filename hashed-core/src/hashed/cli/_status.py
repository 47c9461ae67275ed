"""`hashed status`: identity, policy version, ledger head and what is waiting, at a glance."""

from __future__ import annotations

import contextlib
import sqlite3

import typer

from hashed.cli._output import console, print_json
from hashed.config import HashedSettings
from hashed.errors import HashedError
from hashed.identity import read_public_key
from hashed.ledger._db import get_meta
from hashed.policy import PolicyEngine, load_policy


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the agent's identity, policy version, ledger head and pending work."""
    settings = HashedSettings.load()
    info: dict[str, object] = {"home": str(settings.home.resolve()), "agent": settings.agent}
    try:
        info["public_key"] = read_public_key(settings.key_path)
    except HashedError as exc:
        info["public_key_error"] = str(exc)
    try:
        engine = PolicyEngine(load_policy(settings.policy_path))
        info.update(policy_hash=engine.hash, policy_rules=len(engine.policy.rules), policy_mode=engine.policy.mode)
    except HashedError as exc:
        info["policy_error"] = str(exc)
    info.update(_ledger(settings))
    info["backend"] = settings.backend_url or "none (offline)"
    if as_json:
        print_json(info)
        return
    for name, value in info.items():
        colour = "red" if name.endswith("_error") else "bold"
        console.print(f"{name.replace('_', ' '):>16}  [{colour}]{value}[/]")


def _ledger(settings: HashedSettings) -> dict[str, object]:
    path = settings.ledger_path
    if not path.exists():
        return {"ledger": f"{path} (empty: no call guarded yet)"}
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        head = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        signed_through = get_meta(conn, "signed_through")
        unsigned = conn.execute(
            "SELECT count(*) FROM records WHERE seq > ? AND sig IS NULL", (signed_through,)
        ).fetchone()[0]
        shipped = get_meta(conn, "shipped_through")
        unshipped = 0 if head is None else head[0] - shipped
        pending = conn.execute("SELECT count(*) FROM approvals WHERE status = 'pending'").fetchone()[0]
    return {
        "ledger": str(path),
        "chain_head": "empty" if head is None else f"seq {head[0]}, {bytes(head[1]).hex()[:16]}…",
        "unsigned": unsigned,
        "unshipped": unshipped,
        "pending_approvals": pending,
    }
