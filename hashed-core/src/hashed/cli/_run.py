"""`hashed run -- python agent.py`: run a program with every installed adapter guarding its framework."""

from __future__ import annotations

import os
import shutil

import typer

from hashed.cli._output import fail
from hashed.cli._project import project
from hashed.environment_variables import HASHED_INSTRUMENT


def run(ctx: typer.Context) -> None:
    """Run COMMAND with HASHED_INSTRUMENT=1, so Hashed guards its agent frameworks with no code change."""
    command = list(ctx.args)
    if not command:
        fail("nothing to run", code=2, hint="hashed run -- python agent.py")
    settings = project()
    program = shutil.which(command[0])
    if program is None:
        fail(f"command not found: {command[0]}", code=2)
    env = dict(os.environ, **{HASHED_INSTRUMENT: "1", "HASHED_HOME": str(settings.home.resolve())})
    os.execve(program, command, env)  # noqa: S606 - replacing this process with the user's program is the point
