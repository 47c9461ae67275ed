"""Every check CI runs: `./dev test` runs the default sessions; `nox -t core` (or backend, langchain) a subset."""

from __future__ import annotations

import os
import shutil

import nox
from packaging.requirements import Requirement

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
# The default set is what .ci/run runs (budget: 30 minutes on 2 cores). On a quiet machine, 2026-12-07: 15 min 14 s
# in all (tests_backend 5 min, install 2, deploy 2, e2e 1, tests_core 1, the eight adapter sessions 3); the same set
# with the suites in one process took 34 min under load. If the budget runs short, move install or deploy out with a
# tag, never an adapter.
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests_core",
    "tests_adapter",
    "tests_backend",
    "e2e",
    "docs",
    "install",
    "deploy",
]

PYTHON = "3.11"
# The uv that runs nox, found before any session's virtualenv is on PATH: crewai installs an older `uv` into the
# session's own bin/, which would otherwise run the next sync (and reject the workspace's root groups).
UV = os.environ.get("UV") or shutil.which("uv") or "uv"  # `uv run` (./dev) names itself in UV
PACKAGES = {
    "core": "hashed-core",
    "langchain": "hashed-langchain",
    "crewai": "hashed-crewai",
    "autogen": "hashed-autogen",
    "strands": "hashed-strands",
    "backend": "hashed-backend",
}
# adapter -> package; its framework floors are the "oldest" pins
ADAPTERS = {
    "langchain": "hashed-langchain",
    "crewai": "hashed-crewai",
    "autogen": "hashed-autogen",
    "strands": "hashed-strands",
}


def _sync(session: nox.Session, *packages: str, groups: tuple[str, ...] = ("test",)) -> None:
    """Install workspace packages from uv.lock into the session's virtualenv (reproducible, offline after once)."""
    args = [UV, "sync", "--frozen", "--inexact"]
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
    for package in (*ADAPTERS.values(), "hashed-backend"):  # import-linter reads the installed packages
        _sync(session, package, groups=("lint",))
    session.run("lint-imports")


@nox.session(python=PYTHON, tags=["lint"])
def typecheck(session: nox.Session) -> None:
    for package in PACKAGES.values():  # one `--package` per sync: uv rejects root groups with several
        _sync(session, package, groups=("typecheck",))
    session.run("mypy", "hashed-core/src")
    for adapter in ADAPTERS.values():
        session.run("mypy", f"{adapter}/src")
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


def _workers(dist: str = "worksteal") -> list[str]:
    """pytest-xdist options: the slow suites mostly wait (servers, pip, PostgreSQL), so two workers halve them.

    `worksteal` rebalances as tests finish (the backend suite: 11:46 with `loadfile`, 5:21 with it, same load);
    `loadfile` keeps a module's tests, and its module-scoped fixture, on one worker. HASHED_TEST_WORKERS=0 runs
    them in this process (for a debugger, or `-x` on the first failure).
    """
    workers = os.environ.get("HASHED_TEST_WORKERS", "2")
    return [] if workers == "0" else ["-n", workers, "--dist", dist]


def _framework_test(package: str) -> list[str]:
    """A package's own `framework-test` group: framework parts only its tests need (AutoGen's replay model)."""
    return nox.project.load_toml(f"{package}/pyproject.toml").get("dependency-groups", {}).get("framework-test", [])


def _floors(package: str) -> list[str]:
    """`dist==floor` for every `>=` bound of a package's dependencies, hashed-core aside: the "oldest" pins."""
    deps = nox.project.load_toml(f"{package}/pyproject.toml")["project"]["dependencies"] + _framework_test(package)
    pins = []
    for req in map(Requirement, deps):
        floor = next((spec.version for spec in req.specifier if spec.operator == ">="), None)
        if floor is not None and not req.name.startswith("hashed-"):
            pins.append(f"{req.name}=={floor}")
    return pins


@nox.session(python=PYTHON, tags=["adapters"])
@nox.parametrize("pin", ["oldest", "latest"])
@nox.parametrize("adapter", [nox.param(a, tags=[a]) for a in ADAPTERS])
def tests_adapter(session: nox.Session, adapter: str, pin: str) -> None:
    """An adapter's tests on the locked (latest) framework, or on its declared floors (oldest)."""
    package = ADAPTERS[adapter]
    _sync(session, package, groups=("test", "framework-test") if _framework_test(package) else ("test",))
    if pin == "oldest":
        session.install(*_floors(package))
    session.run("pytest", f"{package}/tests", f"{package}/src", "--doctest-modules", *session.posargs)


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
        *_workers(),
        *session.posargs,
    )


@nox.session(python=PYTHON, default=False, tags=["backend"])
def dashboard(session: nox.Session) -> None:
    """The dashboard's browser tests alone (tests_backend runs them too); they skip without Debian's chromium."""
    _sync(session, "hashed-backend")
    session.run("pytest", "backend/tests/dashboard", *session.posargs)


@nox.session(python=PYTHON, default=False, tags=["bench"])
def bench(session: nox.Session) -> None:
    """Every benchmark table of docs/performance.md (slow; run it on a quiet machine)."""
    for package in (
        "hashed-core",
        "hashed-langchain",
        "hashed-crewai",
        "hashed-autogen",
        "hashed-strands",
        "hashed-backend",
    ):
        _sync(session, package, groups=("bench", "framework-test") if _framework_test(package) else ("bench",))
    session.run("python", "bench/core_guard.py")
    session.run("python", "bench/langchain_overhead.py")
    session.run("python", "bench/crewai_overhead.py")
    session.run("python", "bench/autogen_overhead.py")
    session.run("python", "bench/strands_overhead.py")
    session.run("python", "bench/bundle.py")
    session.run("python", "bench/group_signing.py")
    session.run("python", "bench/backend_tree.py")
    session.run("python", "bench/backend_ingest.py", *session.posargs)


@nox.session(python=PYTHON, tags=["e2e"])
def e2e(session: nox.Session) -> None:
    """Cross-package tests: real agents, the real CLI and a real backend process on loopback."""
    for package in ("hashed-core", "hashed-backend"):  # one `--package` per sync (see typecheck)
        _sync(session, package)
    session.run("pytest", "tests", "-m", "e2e", *_workers(), *session.posargs)


@nox.session(python=PYTHON, tags=["docs"])
def docs(session: nox.Session) -> None:
    """The documentation site, strictly (a broken link, anchor or page fails), then the site links elsewhere."""
    _sync(session, groups=("docs",))
    quiet = {"NO_MKDOCS_2_WARNING": "1"}  # material's end-of-life banner, printed at every build
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs, env=quiet)
    session.run("python", "scripts/check_site_links.py", "site")


@nox.session(python=PYTHON, tags=["install"])
def install(session: nox.Session) -> None:
    """Every install command of every doc, as written, in new virtualenvs with plain pip; the built files."""
    _sync(session, groups=("test", "release"))
    session.run("pytest", "tests/install", *_workers(), *session.posargs)


@nox.session(python=PYTHON, tags=["deploy", "backend"])
def deploy(session: nox.Session) -> None:
    """deploy/: PostgreSQL, replicas and nginx with TLS, end to end; backup, restore, retention, upgrade."""
    for package in ("hashed-core", "hashed-backend"):  # one `--package` per sync (see typecheck)
        _sync(session, package)
    session.run("pytest", "tests/deploy", *_workers("loadfile"), *session.posargs)  # one shipped store per module
