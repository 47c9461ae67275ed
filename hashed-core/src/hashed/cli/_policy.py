"""`hashed policy validate | test`: check a policy file and see what it decides, before it is enforced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hashed.cli._calls import CALL_FORMS, load_calls, parse_call
from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_USAGE, console, fail, print_json
from hashed.cli._project import read_policy
from hashed.config import HashedSettings
from hashed.policy import Policy, PolicyEngine, PolicyIssue, policy_issues

app = typer.Typer(help="Check and try out a policy; diff, push and pull it at the backend.", no_args_is_help=True)

POLICY_FILE = typer.Argument(
    None, metavar="[FILE]", help="Policy file (default: .hashed/policy.yaml).", show_default=False
)


def print_issues(target: Path, issues: list[PolicyIssue], out: Console = console) -> None:
    """Every problem of a policy file, one line each: `file:line: field: message`."""
    for issue in issues:
        where = f"{target}:{issue.line}" if issue.line else str(target)
        field = f" {issue.field}:" if issue.field else ""
        out.print(f"[bold red]✗[/] {escape(f'{where}:{field} {issue.message}')}")


def valid_policy(path: Path | None, out: Console = console) -> tuple[Path, str, Policy]:
    """The policy file named (else the project's), its text and its policy; exits 1 listing its problems."""
    target, text = read_policy(path)
    result = policy_issues(text, path=str(target))
    if not isinstance(result, Policy):
        print_issues(target, result, out)
        fail(f"{target} is not a valid policy", code=EXIT_CHECK_FAILED, hint=f"hashed policy validate {target}")
    return target, text, result


@app.command()
def validate(
    path: Path | None = POLICY_FILE,
    as_json: bool = typer.Option(False, "--json", help="Print problems as JSON."),
) -> None:
    """Validate a policy file; print every problem with its line and field."""
    target, text = read_policy(path)
    result = policy_issues(text, path=str(target))
    if isinstance(result, Policy):
        engine = PolicyEngine(result)
        if as_json:
            print_json({"ok": True, "path": str(target), "rules": len(result.rules), "hash": engine.hash})
        else:
            console.print(
                f"[green]✓[/] {escape(str(target))}: {len(result.rules)} rules, default {result.default}, "
                f"mode {result.mode}, hash {engine.hash[:16]}…"
            )
        return
    if as_json:
        print_json({"ok": False, "path": str(target), "issues": [i.model_dump() for i in result]})
    else:
        print_issues(target, result)
    raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("test")
def try_calls(
    path: Path | None = POLICY_FILE,
    call: list[str] = typer.Option(
        [], "--call", "-c", help='A call: tool {"arg": value} or tool arg=value (repeatable).'
    ),
    calls: Path = typer.Option(None, "--calls", help="YAML/JSON list of {tool, args, agent, expect} to evaluate."),
    agent: str = typer.Option(None, "--agent", help="Agent name for the calls (default: from the settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as JSON."),
) -> None:
    """Show what the policy decides for sample calls, and which rule decided; exit 1 if an `expect` fails.

    Rolling windows are not counted here: they depend on the ledger's history.
    """
    cases = [parse_call(text) for text in call]  # malformed input first: nothing is evaluated then
    if calls is not None:
        cases.extend(load_calls(calls))
    if not cases:
        fail("no calls to test", code=EXIT_USAGE, hint=f"add --call or --calls calls.yaml; {CALL_FORMS}")
    _, _, policy = valid_policy(path)
    engine = PolicyEngine(policy)
    default_agent = agent or HashedSettings.load().agent
    rows: list[dict[str, Any]] = []
    for case in cases:
        verdict = engine.evaluate(case.get("agent") or default_agent, case["tool"], case["args"])
        expect = case.get("expect")
        rows.append(
            {
                "tool": case["tool"],
                "args": case["args"],
                "effect": verdict.effect.value,
                "rule": verdict.rule_id,
                "reason": verdict.reason,
                "expect": expect,
                "ok": expect is None or expect == verdict.effect.value,
            }
        )
    if as_json:
        print_json(rows)
    else:
        _print_table(rows, engine.hash)
    if not all(row["ok"] for row in rows):
        raise typer.Exit(EXIT_CHECK_FAILED)


def _print_table(rows: list[dict[str, Any]], policy_hash: str) -> None:
    table = Table("call", "decision", "rule", "reason", title=f"policy {policy_hash[:12]}…")
    colours = {"allow": "green", "deny": "red", "pending": "yellow"}
    for row in rows:
        mark = "" if row["expect"] is None else (" ✓" if row["ok"] else f" ✗ expected {row['expect']}")
        table.add_row(
            escape(f"{row['tool']} {json.dumps(row['args'])}"),
            f"[{colours[row['effect']]}]{row['effect']}[/]{mark}",
            escape(row["rule"] or "(default)"),
            escape(row["reason"]),
        )
    console.print(table)
