"""`hashed backend serve | migrate`: the backend's own command line, when `hashed-backend` is installed.

hashed-core does not depend on hashed-backend, nor import it by name: the backend offers its command line
through the `hashed.commands` entry point `backend`, loaded only when this command runs, and every argument is
handed to it unchanged (`hashed backend serve --port 9000`, `hashed backend --help`).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from hashed.cli._output import fail

__all__ = ["backend"]

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def backend(ctx: typer.Context) -> None:
    """Run the backend: serve (default 127.0.0.1:8400) or migrate. Needs: pip install hashed-backend."""
    found = entry_points(group="hashed.commands", name="backend")
    if not found:
        fail(
            "the Hashed backend is not installed in this environment",
            hint="pip install hashed-backend (or: uv add hashed-backend), then: hashed backend serve",
        )
    try:
        app = next(iter(found)).load()
    except ImportError as exc:
        fail(f"hashed-backend is installed but cannot start: {exc}", hint="pip install -U hashed-backend")
    app(args=list(ctx.args), prog_name="hashed backend")
