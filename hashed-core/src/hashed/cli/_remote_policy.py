"""`hashed policy diff | push | pull`: the policy documents at the backend (the org's, or one agent's).

`scope` is `org` unless `--agent` names an agent (by id or name): an agent's own document, when present,
replaces the organisation's for that agent. Pushing shows the diff first and asks before removing rules.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import typer

from hashed.cli._admin_client import AdminClient, remote
from hashed.cli._output import EXIT_CHECK_FAILED, console, err, fail, print_json
from hashed.cli._policy import POLICY_FILE, valid_policy
from hashed.errors import BackendError

__all__ = ["diff", "pull", "push"]

_AGENT = typer.Option(None, "--agent", help="An agent's own document (id or name) instead of the organisation's.")


def _read(path: Path | None) -> tuple[Path, str]:
    """The local policy text, validated by the core first (the backend would refuse it anyway)."""
    target, text, _ = valid_policy(path, err)
    return target, text


def can_ask() -> bool:
    """Whether a person can answer a question (standard input is a terminal)."""
    return sys.stdin.isatty()


def _scope(backend: AdminClient, agent: str | None) -> str:
    return "org" if agent is None else backend.agent_id(agent)


def _show(changes: dict[str, Any], scope: str, target: Path) -> None:
    """The backend's rule-by-rule diff, for people."""
    where = "the organisation's policy" if scope == "org" else f"agent {scope}'s policy"
    current = f"version {changes['current_version']}" if changes["current_version"] else "nothing yet"
    if changes["unchanged"]:
        console.print(f"{target} has the same rules and settings as {where} ({current})")
        return
    console.print(f"{target} → {where} (now {current})")
    for rule in changes["added"]:
        console.print(f"  [green]+ rule {rule}[/]")
    for rule in changes["removed"]:
        console.print(f"  [red]- rule {rule}[/]")
    for rule in changes["changed"]:
        console.print(f"  [yellow]~ rule {rule['id']}[/] ({', '.join(rule['fields'])})")
    for name, change in changes["settings"].items() if changes["current_version"] else ():  # all new at first
        console.print(f"  [yellow]~ {name}[/]: {change['before']!r} → {change['after']!r}")


def _current_text(backend: AdminClient, scope: str) -> str:
    try:
        return str(backend.json("GET", f"/v1/policies/{scope}").get("yaml") or "")
    except BackendError as exc:
        if exc.code == "policy_missing":
            return ""
        raise


def diff(
    path: Path | None = POLICY_FILE,
    agent: str | None = _AGENT,
    text: bool = typer.Option(False, "--text", help="Also print a line-by-line diff of the YAML."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are differences (as git diff)."),
    as_json: bool = typer.Option(False, "--json", help="Print the backend's diff as JSON."),
) -> None:
    """Show what pushing FILE would change at the backend: rules added, removed, changed; settings."""
    target, yaml_text = _read(path)
    with remote() as backend:
        scope = _scope(backend, agent)
        changes = backend.json("POST", f"/v1/policies/{scope}/diff", body={"yaml": yaml_text})
        current = _current_text(backend, scope) if text else ""
    if as_json:
        print_json({"scope": scope, **changes})
    else:
        _show(changes, scope, target)
        if text and not changes["unchanged"]:
            lines = difflib.unified_diff(
                current.splitlines(), yaml_text.splitlines(), f"backend:{scope}", str(target), lineterm=""
            )
            for line in lines:
                colour = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])
                console.print(f"[{colour}]{line}[/]" if colour else line, markup=bool(colour), highlight=False)
    if exit_code and not changes["unchanged"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def push(
    path: Path | None = POLICY_FILE,
    agent: str | None = _AGENT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove rules without asking."),
    comment: str | None = typer.Option(None, "--comment", "-m", help="Why: kept with the version."),
    as_json: bool = typer.Option(False, "--json", help="Print the diff and the new version as JSON."),
) -> None:
    """Store FILE as the next version at the backend: shows the diff, asks before removing rules."""
    target, yaml_text = _read(path)
    with remote() as backend:
        scope = _scope(backend, agent)
        changes = backend.json("POST", f"/v1/policies/{scope}/diff", body={"yaml": yaml_text})
        if not as_json:
            _show(changes, scope, target)
        if changes["unchanged"] and _current_text(backend, scope) == yaml_text:
            if as_json:
                print_json({"scope": scope, "pushed": False, "diff": changes})
            else:
                console.print("nothing to push")
            return
        removals = bool(changes["removed"])
        if removals and not yes:
            names = ", ".join(changes["removed"])
            if not can_ask():
                fail(
                    f"this push removes rules {names}; nothing was pushed",
                    code=EXIT_CHECK_FAILED,
                    hint="check the diff (hashed policy diff), then push again with --yes to remove them",
                )
            if not typer.confirm(f"remove rules {names}?", default=False, err=True):
                fail("nothing pushed", code=EXIT_CHECK_FAILED)
        body: dict[str, Any] = {"yaml": yaml_text, "base_version": changes["current_version"]}
        if removals:
            body["allow_removals"] = True  # only once a person confirmed (or passed --yes)
        if comment:
            body["comment"] = comment
        try:
            pushed = backend.json("PUT", f"/v1/policies/{scope}", body=body)
        except BackendError as exc:
            if exc.code == "version_conflict":
                fail(str(exc), code=EXIT_CHECK_FAILED, hint="someone pushed meanwhile: run hashed policy diff again")
            raise
    if as_json:
        print_json({"scope": scope, "pushed": True, "diff": changes, "version": pushed})
        return
    console.print(
        f"[green]✓[/] pushed version {pushed['version']} of {scope} (hash {pushed['hash'][:16]}…); "
        "agents pick it up at their next policy check"
    )


def pull(
    agent: str | None = _AGENT,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (default: standard output)."),
    version: int | None = typer.Option(None, "--version", help="An older version (default: the current one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the version with its metadata as JSON."),
) -> None:
    """Fetch a policy document from the backend (to edit it and push it again)."""
    with remote() as backend:
        scope = _scope(backend, agent)
        suffix = f"/versions/{version}" if version is not None else ""
        try:
            document = backend.json("GET", f"/v1/policies/{scope}{suffix}")
        except BackendError as exc:
            if exc.code == "policy_missing" and scope != "org":
                fail(
                    f"agent {agent} has no policy document of its own",
                    code=EXIT_CHECK_FAILED,
                    hint="it follows the organisation's: hashed policy pull",
                )
            raise
    if as_json:
        print_json(document)
        return
    if document["yaml"] is None:
        fail(
            f"version {document['version']} of {scope} removed the document",
            code=EXIT_CHECK_FAILED,
            hint="pull an earlier one with --version N",
        )
    if output is None:
        sys.stdout.write(document["yaml"])
        return
    output.write_text(document["yaml"], encoding="utf-8")
    err.print(f"[green]✓[/] wrote version {document['version']} of {scope} to {output}", soft_wrap=True)
