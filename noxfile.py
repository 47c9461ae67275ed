"""Every check CI runs: `./dev test` runs the default sessions; `nox -t core` (or backend, langchain) a subset."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "tests_core", "tests_backend"]

PYTHON = "3.11"
PACKAGES = {"core": "hashed-core", "backend": "hashed-backend"}


def _sync(session: nox.Session, *packages: str, groups: tuple[str, ...] = ("test",)) -> None:
    """Install workspace packages from uv.lock into the session's virtualenv (reproducible, offline after once)."""
    args = ["uv", "sync", "--frozen", "--inexact"]
    for package in packages:
        args += ["--package", package]
    for group in groups:
        args += ["--group", group]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}, silent=True)


@nox.session(python=PYTHON, tags=["lint"])
def lint(session: nox.Session) -> None:
    _sync(session, groups=("lint",))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON, tags=["lint"])
def typecheck(session: nox.Session) -> None:
    _sync(session, *PACKAGES.values(), groups=("typecheck",))
    session.run("mypy", "hashed-core/src")
    session.run("mypy", "backend/src")


@nox.session(python=PYTHON, tags=["core"])
def tests_core(session: nox.Session) -> None:
    _sync(session, "hashed-core")
    session.run(
        "pytest",
        "hashed-core/tests",
        "hashed-core/src",
        "--doctest-modules",
        *session.posargs,
        env={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
        success_codes=[0],
    )


@nox.session(python=PYTHON, tags=["backend"])
def tests_backend(session: nox.Session) -> None:
    """The backend API suite on SQLite, and on PostgreSQL when HASHED_TEST_DATABASE_URL is set (.ci/run sets it)."""
    _sync(session, "hashed-backend")
    session.run(
        "pytest",
        "backend/tests",
        "backend/src",
        "--doctest-modules",
        "--ignore=backend/src/hashed_backend/migrations",  # Alembic scripts run only inside Alembic
        *session.posargs,
    )


@nox.session(python=PYTHON, default=False, tags=["bench"])
def bench(session: nox.Session) -> None:
    _sync(session, "hashed-core", groups=("bench",))
    session.run("python", "bench/run.py", *session.posargs)
