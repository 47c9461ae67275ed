"""`hashed policy validate | test`: check a policy file and see what it decides, before it is enforced."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from hashed.cli._output import EXIT_CHECK_FAILED, console, fail, print_json
from hashed.config import HashedSettings
from hashed.errors import PolicyFileError
from hashed.policy import Policy, PolicyEngine, load_policy, policy_issues

app = typer.Typer(help="Check and try out a policy; diff, push and pull it at the backend.", no_args_is_help=True)


def _policy_path(path: Path | None) -> Path:
    return path if path is not None else HashedSettings.load().policy_path


@app.command()
def validate(
    path: Path = typer.Argument(None, help="Policy file (default: .hashed/policy.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print problems as JSON."),
) -> None:
    """Validate a policy file; print every problem with its line and field."""
    target = _policy_path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {target}: {exc}", hint="run hashed init, or pass the policy file")
    result = policy_issues(text, path=str(target))
    if isinstance(result, Policy):
        engine = PolicyEngine(result)
        if as_json:
            print_json({"ok": True, "path": str(target), "rules": len(result.rules), "hash": engine.hash})
        else:
            console.print(
                f"[green]✓[/] {target}: {len(result.rules)} rules, default {result.default}, "
                f"mode {result.mode}, hash {engine.hash[:16]}…"
            )
        return
    if as_json:
        print_json({"ok": False, "path": str(target), "issues": [i.model_dump() for i in result]})
    else:
        for issue in result:
            where = f"{target}:{issue.line}" if issue.line else str(target)
            field = f" {issue.field}:" if issue.field else ""
            console.print(f"[bold red]✗[/] {where}:{field} {issue.message}")
    raise typer.Exit(EXIT_CHECK_FAILED)


def _parse_call(text: str) -> dict[str, Any]:
    tool, _, rest = text.strip().partition(" ")
    args: Any = {}
    if rest.strip():
        try:
            args = json.loads(rest)
        except json.JSONDecodeError:
            args = dict(part.split("=", 1) for part in shlex.split(rest) if "=" in part)
    if not tool or not isinstance(args, dict):
        fail(
            f"cannot read the call {text!r}",
            code=2,
            hint="""write it as: transfer_money {"to": "acct-9", "amount": 50}  or  transfer_money to=acct-9""",
        )
    return {"tool": tool, "args": args}


@app.command("test")
def try_calls(
    path: Path = typer.Argument(None, help="Policy file (default: .hashed/policy.yaml)."),
    call: list[str] = typer.Option([], "--call", "-c", help='A call: tool {"arg": value} (repeatable).'),
    calls: Path = typer.Option(None, help="YAML/JSON list of {tool, args, agent, expect} to evaluate."),
    agent: str = typer.Option(None, help="Agent name for --call (default: from the settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as JSON."),
) -> None:
    """Show what the policy decides for sample calls, and which rule decided; exit 1 if an `expect` fails.

    Rolling windows are not counted here: they depend on the ledger's history.
    """
    try:
        policy = load_policy(_policy_path(path))
    except PolicyFileError as exc:
        fail(str(exc), code=EXIT_CHECK_FAILED)
    engine = PolicyEngine(policy)
    default_agent = agent or HashedSettings.load().agent
    cases = [_parse_call(text) for text in call]
    if calls is not None:
        loaded = yaml.safe_load(calls.read_text())
        if not isinstance(loaded, list):
            fail(f"{calls} must hold a list of calls", code=2)
        cases.extend(loaded)
    if not cases:
        fail("no calls to test", code=2, hint="""add --call 'send_email {"to": "a@b.c"}' or --calls calls.yaml""")
    rows, failed = [], 0
    for case in cases:
        verdict = engine.evaluate(case.get("agent") or default_agent, case["tool"], case.get("args") or {})
        expect = case.get("expect")
        ok = expect is None or expect == verdict.effect.value
        failed += not ok
        rows.append(
            {
                "tool": case["tool"],
                "args": case.get("args") or {},
                "effect": verdict.effect.value,
                "rule": verdict.rule_id,
                "reason": verdict.reason,
                "expect": expect,
                "ok": ok,
            }
        )
    if as_json:
        print_json(rows)
    else:
        table = Table("call", "decision", "rule", "reason", title=f"policy {engine.hash[:12]}…")
        colours = {"allow": "green", "deny": "red", "pending": "yellow"}
        for row in rows:
            mark = "" if row["expect"] is None else (" ✓" if row["ok"] else f" ✗ expected {row['expect']}")
            table.add_row(
                f"{row['tool']} {json.dumps(row['args'])}",
                f"[{colours[row['effect']]}]{row['effect']}[/]{mark}",
                row["rule"] or "(default)",
                row["reason"],
            )
        console.print(table)
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)
