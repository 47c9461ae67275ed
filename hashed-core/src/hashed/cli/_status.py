"""`hashed status`: identity, policy version, ledger head and what is waiting, at a glance."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import typer
from rich.markup import escape

from hashed.cli._credentials import load_credentials
from hashed.cli._output import console, print_json
from hashed.cli._project import INIT_HINT, project
from hashed.config import HashedSettings
from hashed.errors import ConfigError, HashedError
from hashed.identity import read_public_key
from hashed.ledger._db import SQLiteError
from hashed.ledger._queries import ledger_summary
from hashed.policy import PolicyEngine, load_policy


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the agent's identity, policy version, ledger head and pending work (exit 3 outside a project)."""
    settings = project()
    info: dict[str, object] = {"home": str(settings.home.resolve()), "agent": settings.agent}
    try:
        info["public_key"] = read_public_key(settings.key_path)
    except HashedError as exc:
        info["public_key_error"] = str(exc)
    try:
        engine = PolicyEngine(load_policy(settings.policy_path))
        info.update(policy_hash=engine.hash, policy_rules=len(engine.policy.rules), policy_mode=engine.policy.mode)
    except HashedError as exc:
        missing = not settings.policy_path.exists()
        info["policy_error"] = f"no policy at {settings.policy_path} ({INIT_HINT})" if missing else str(exc)
    info.update(_ledger(settings))
    info["backend"] = settings.backend_url or "none (offline)"
    info.update(_remote(settings.backend_url))
    if as_json:
        print_json(info)
        return
    for name, value in info.items():
        if name.endswith("_reachable"):
            continue  # the `_health` line says it in words
        unhealthy = name.endswith("_health") and not info.get(name.replace("_health", "_reachable"))
        colour = "red" if name.endswith("_error") or unhealthy else "bold"
        console.print(f"{name.replace('_', ' '):>16}  [{colour}]{escape(str(value))}[/]")


def _ledger(settings: HashedSettings) -> dict[str, object]:
    path = settings.ledger_path
    if not path.exists():
        return {"ledger": f"{path} (empty: no call guarded yet)"}
    try:
        return _ledger_head(path)
    except SQLiteError as exc:  # not a ledger, or a damaged one: say so, and go on with the rest
        return {"ledger": str(path), "ledger_error": f"cannot read it: {exc} (hashed verify checks it)"}


def _ledger_head(path: Path) -> dict[str, object]:
    summary = ledger_summary(path)
    head = "empty" if summary.head_hash is None else f"seq {summary.head_seq}, {summary.head_hash[:16]}…"
    return {
        "ledger": str(path),
        "chain_head": head,
        "unsigned": summary.unsigned,
        "unshipped": summary.unshipped,
        "pending_approvals": summary.pending_approvals,
    }


def _reachable(url: str) -> tuple[bool, str]:
    """GET /health with a short timeout: (reachable, what happened)."""
    started = time.monotonic()
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=2.0)
    except httpx.HTTPError as exc:
        return False, f"unreachable: {exc or type(exc).__name__}"
    took = (time.monotonic() - started) * 1000
    if response.status_code != 200:
        return False, f"answered {response.status_code} to GET /health"
    return True, f"reachable ({took:.0f} ms)"


def _remote(agent_url: str | None) -> dict[str, object]:
    """Whether the agent's backend answers, and which backend `hashed login` manages."""
    info: dict[str, object] = {}
    if agent_url:
        info["backend_reachable"], info["backend_health"] = _reachable(agent_url)
    try:
        login = load_credentials()
    except ConfigError as exc:
        return {**info, "login_error": str(exc)}
    if login is None:
        info["login"] = "none (hashed login to manage a backend)"
    elif login.url != (agent_url or "").rstrip("/"):
        info["login"] = f"{login.url} ({'HASHED_ADMIN_KEY' if login.source == 'environment' else login.source})"
        info["login_reachable"], info["login_health"] = _reachable(login.url)
    else:
        info["login"] = f"{login.url} ({'HASHED_ADMIN_KEY' if login.source == 'environment' else login.source})"
    return info
