"""Output helpers shared by the commands: rich for people, JSON for scripts, one way to fail."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

__all__ = ["EXIT_CHECK_FAILED", "EXIT_SETUP", "console", "err", "fail", "print_json", "report"]

EXIT_CHECK_FAILED = 1
EXIT_SETUP = 3

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """One JSON document on stdout (never coloured)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def report(message: str, hint: str | None = None) -> None:
    """Print an error (and what to do next) to stderr."""
    err.print(f"[bold red]error:[/] {message}")
    if hint:
        err.print(f"[dim]→ {hint}[/]")


def fail(message: str, *, code: int = EXIT_SETUP, hint: str | None = None) -> NoReturn:
    """Print an error (and what to do next) to stderr and exit with `code`."""
    report(message, hint)
    raise typer.Exit(code)
