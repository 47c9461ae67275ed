"""The `hashed` command: one entry point, one sub-command module per area."""

from __future__ import annotations

import typer

from hashed._version import __version__
from hashed.cli import _approvals, _policy
from hashed.cli._init import init
from hashed.cli._run import run
from hashed.cli._status import status
from hashed.cli._verify import verify

app = typer.Typer(
    name="hashed",
    help="Guard every tool call your AI agents make: policy, signed ledger, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(init)
app.command()(verify)
app.command()(status)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run)
app.add_typer(_policy.app, name="policy")
app.add_typer(_approvals.app, name="approvals")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hashed {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Exit codes: 0 ok, 1 a check failed (bad record, invalid policy, failed expectation), 2 usage, 3 setup."""


def main() -> None:
    """Console-script entry point."""
    app()
