"""The project a local command works on (`.hashed/`, or `$HASHED_HOME`), and its policy file.

One rule for every command that needs a project: none here is a setup error (exit 3) whose hint leads somewhere
(`hashed init` keeps an existing key and only adds what is missing). A file named on the command line that
cannot be read is a usage error (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from hashed.cli._output import EXIT_SETUP, EXIT_USAGE, fail
from hashed.config import HashedSettings
from hashed.ledger import is_ledger_file

__all__ = ["INIT_HINT", "ledger_file", "project", "read_policy"]

INIT_HINT = "run hashed init here (it keeps an existing key and adds what is missing), or set HASHED_HOME"


def project() -> HashedSettings:
    """The settings of the project here; exits 3 when there is none."""
    settings = HashedSettings.load()
    if not settings.home.is_dir():
        fail(f"no Hashed project at {settings.home.resolve()}", code=EXIT_SETUP, hint=INIT_HINT)
    return settings


def read_policy(path: Path | None) -> tuple[Path, str]:
    """The policy file named (else the project's) and its text; exits 2 or 3 with what to do when unreadable."""
    if path is None:
        target = project().policy_path
        if not target.exists():
            fail(
                f"no policy at {target}",
                code=EXIT_SETUP,
                hint="run hashed init to write the starter policy (it keeps the existing key), or pass a policy file",
            )
        code = EXIT_SETUP
    else:
        target, code = path, EXIT_USAGE
        if not target.exists():
            fail(f"{target} does not exist", code=code, hint="pass the policy file, e.g. .hashed/policy.yaml")
    try:
        return target, target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {target}: {exc}", code=code, hint="pass a readable YAML policy file")


def ledger_file(path: Path | None) -> Path:
    """The ledger named (else the project's); exits 2 saying whether it is missing or not a ledger at all."""
    target = path if path is not None else project().ledger_path
    if not target.exists():
        hint = (
            "check the path (a project's ledger is .hashed/ledger.db)"
            if path is not None
            else "the agent writes it at its first guarded call: run the agent here once, or pass the ledger's path"
        )
        fail(f"no ledger at {target}", code=EXIT_USAGE, hint=hint)
    if not is_ledger_file(target):
        fail(f"{target} is not a ledger", code=EXIT_USAGE, hint="pass .hashed/ledger.db, or run where the agent runs")
    return target
