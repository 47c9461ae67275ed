"""The `hashed` command: one entry point, one sub-command module per area."""

from __future__ import annotations

import sys

import typer

from hashed._version import __version__
from hashed.cli import _agents, _approvals, _keys, _logs, _policy, _proof, _remote_policy, _witness
from hashed.cli._backend import CONTEXT as BACKEND_CONTEXT
from hashed.cli._backend import backend
from hashed.cli._init import init
from hashed.cli._login import login, logout
from hashed.cli._output import EXIT_SETUP, report
from hashed.cli._run import run
from hashed.cli._status import status
from hashed.cli._verify import verify
from hashed.errors import HashedError

EXIT_CODES = (
    "Exit codes: 0 ok; 1 a check failed or the backend refused the request (bad record, invalid policy, "
    "failed expectation, unknown id, conflict); 2 usage; 3 setup (no project or login, backend unreachable, "
    "credentials refused: the message says what to run next)."
)

app = typer.Typer(
    name="hashed",
    help=f"Guard every tool call your AI agents make: policy, signed ledger, audit.\n\n{EXIT_CODES}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(init)
app.command()(verify)
app.command()(status)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run)
app.command()(login)
app.command()(logout)

_policy.app.command()(_remote_policy.diff)
_policy.app.command()(_remote_policy.push)
_policy.app.command()(_remote_policy.pull)
app.add_typer(_policy.app, name="policy")
_agents.app.command("rotate-key")(_agents.rotate_key)
app.add_typer(_agents.app, name="agent")
app.add_typer(_keys.app, name="keys")
app.add_typer(_logs.app, name="logs")
app.add_typer(_approvals.app, name="approvals")
app.add_typer(_proof.app, name="proof")
app.add_typer(_witness.app, name="witness")
app.command(context_settings=BACKEND_CONTEXT, add_help_option=False)(backend)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hashed {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Exit codes: 0 ok, 1 a check failed or the backend refused, 2 usage, 3 setup (see docs/cli.md)."""


def main() -> None:
    """Console-script entry point: an error no command handled is printed with its advice, not as a traceback."""
    try:
        app()
    except HashedError as exc:
        report(str(exc))
        sys.exit(EXIT_SETUP)
