"""The `hashed` command: one entry point, one sub-command module per area, one way to end with an error."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from hashed._docs import docs_url
from hashed._version import __version__
from hashed.cli import _account, _agents, _approvals, _keys, _logs, _people, _policy, _proof, _remote_policy, _witness
from hashed.cli._backend import CONTEXT as BACKEND_CONTEXT
from hashed.cli._backend import backend
from hashed.cli._init import init
from hashed.cli._login import login, logout
from hashed.cli._output import EXIT_CODES, EXIT_SETUP, report
from hashed.cli._run import run
from hashed.cli._status import status
from hashed.cli._verify import verify
from hashed.errors import HashedError


def _usage_errors() -> tuple[type[Exception], ...]:
    """What typer raises for a bad command line: since 0.26 it vendors click (`typer.TyperException`)."""
    vendored = getattr(typer, "TyperException", None)
    if isinstance(vendored, type) and issubclass(vendored, Exception):
        return (vendored,)
    return (importlib.import_module("click").ClickException,)


_USAGE_ERRORS = _usage_errors()


class HashedGroup(TyperGroup):
    """Ends every error the same way, in one line plus what to do next: ours, typer's usage errors, HashedError."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; in standalone mode, exit with its code instead of returning."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _USAGE_ERRORS as exc:
            sys.exit(_usage_error(exc))
        except typer.Abort:
            report("aborted: nothing was changed")
            sys.exit(1)
        except HashedError as exc:  # a setting, key or file a command did not handle itself
            report(str(exc))
            sys.exit(EXIT_SETUP)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: Exception) -> int:
    code = int(getattr(exc, "exit_code", 2))
    message = str(getattr(exc, "format_message", lambda: str(exc))())
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # the help, already printed when rich formats it
        if message.strip():
            typer.echo(message, err=True)
        return code
    command = getattr(ctx, "command_path", None) or "hashed"
    report(message, hint=f"see: {command} --help")
    return code


EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."

app = typer.Typer(
    name="hashed",
    cls=HashedGroup,
    help=f"Guard every tool call your AI agents make: policy, signed ledger, audit.\n\n{EXIT_HELP}\n\n"
    f"Documentation: {docs_url('cli')}",
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
app.add_typer(_people.app, name="people")
app.add_typer(_account.app, name="account")
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
    """Guard every tool call your AI agents make: policy, signed ledger, audit."""


def main() -> None:
    """Console-script entry point (`hashed`, `python -m hashed.cli`)."""
    app()
