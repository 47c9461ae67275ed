"""Output helpers shared by the commands: rich for people, JSON for scripts, one way to fail, one table of exit codes.

Messages never wrap (`soft_wrap`): a suggested command or a path stays on one line, so it can be copied even when
the output is piped at rich's default 80 columns. Tables still fit the terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_CODES",
    "EXIT_NOTHING_CHECKED",
    "EXIT_SETUP",
    "EXIT_USAGE",
    "console",
    "err",
    "fail",
    "print_json",
    "report",
]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_SETUP = 3
EXIT_NOTHING_CHECKED = 4

EXIT_CODES = {
    0: "done",
    EXIT_CHECK_FAILED: "a check failed, or the backend refused the request",
    EXIT_USAGE: "usage: an unknown option, a malformed value or file given, a confirmation that could not be asked",
    EXIT_SETUP: "setup: no project, no login, the backend unreachable, credentials refused",
    EXIT_NOTHING_CHECKED: "warning: nothing to check (`hashed verify` on an empty ledger or export)",
}
"""Every exit code of `hashed` (docs/cli.md has the same table, with examples; a test keeps them equal)."""

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """One JSON document on stdout (never coloured)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def report(message: str, hint: str | None = None) -> None:
    """Print an error (and what to do next) to stderr, each on one line; the text is shown as is, not as markup."""
    err.print(f"[bold red]error:[/] {escape(_one_line(message))}")
    if hint:
        err.print(f"[dim]→ {escape(_one_line(hint))}[/]")


def fail(message: str, *, code: int = EXIT_SETUP, hint: str | None = None) -> NoReturn:
    """Print an error (and what to do next) to stderr and exit with `code`."""
    report(message, hint)
    raise typer.Exit(code)


def _one_line(text: str) -> str:
    """A message from elsewhere (an exception, YAML's parser) may span lines: an error is one line."""
    return " ".join(text.split()) if "\n" in text else text
