"""`hashed backend verify | backup | restore | retention`: the operations commands (docs/operations.md).

They open the database themselves (the server need not run) and exit 0 when done, 1 when a check failed or the
operation was refused (the message says why and what to do), 3 when the database cannot be reached.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

DatabaseUrl = Annotated[str | None, typer.Option(help="postgresql://… or sqlite:///… (else HASHED_DATABASE_URL).")]
DataDir = Annotated[Path | None, typer.Option(help="Folder of the embedded SQLite database.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def _settings(database_url: str | None, data_dir: Path | None) -> Any:
    from hashed_backend.settings import BackendSettings

    given: dict[str, Any] = {}
    if database_url is not None:
        given["database_url"] = database_url
    if data_dir is not None:
        given["data_dir"] = data_dir
    return BackendSettings(**given)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    from sqlalchemy.exc import OperationalError

    from hashed.errors import ChainBrokenError
    from hashed_backend.ops.backup import BackupError
    from hashed_backend.ops.store import NoStoreError

    try:
        yield
    except OperationalError as exc:
        _fail(f"cannot reach the database: {str(exc.orig).strip().splitlines()[0]} (check --database-url)", 3)
    except NoStoreError as exc:
        _fail(str(exc), 3)
    except (BackupError, ChainBrokenError) as exc:
        _fail(str(exc))


def _print_report(report: Any, as_json: bool) -> None:
    import dataclasses

    import orjson

    if as_json:
        sys.stdout.write(orjson.dumps([dataclasses.asdict(c) for c in report.chains]).decode() + "\n")
        return
    for chain in report.chains:
        where = f"seq {chain.first_seq}..{chain.head_seq}" if chain.records else "no records"
        state = "ok" if chain.ok else f"FAILED: {chain.error}"
        typer.echo(f"{chain.org_id} {chain.name} ({chain.agent_id}): {chain.records} records, {where}: {state}")
    failed = sum(not chain.ok for chain in report.chains)
    typer.echo(
        f"{len(report.chains)} agents, {report.records} records: " + (f"{failed} FAILED" if failed else "verified")
    )


def verify(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Re-verify every stored record (hash, signature, chain) and every agent's head; exit 1 on the first bad chain."""
    from hashed_backend.ops.audit import verify_store
    from hashed_backend.ops.store import connect

    with _errors(), connect(_settings(database_url, data_dir).sqlalchemy_url) as conn:
        report = verify_store(conn)
    _print_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


def backup(
    file: Annotated[
        Path, typer.Argument(help="The backup file to write (never overwritten); the manifest goes beside it.")
    ],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Back up the audit store (pg_dump or SQLite's online backup) with a manifest of every agent's head."""
    from hashed_backend.ops.backup import backup as run
    from hashed_backend.ops.backup import manifest_path

    with _errors():
        manifest = run(_settings(database_url, data_dir), file)
    typer.echo(
        f"backup {file}: {len(manifest['agents'])} agents, {manifest['records']} records, "
        f"revision {manifest['revision']}, sha256 {manifest['sha256'][:16]}…; manifest {manifest_path(file)}"
    )


def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `hashed backend backup` (its manifest beside it).")],
    replace: Annotated[bool, typer.Option(help="Replace a database that holds agents already.")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Restore a backup into the database (stop the servers first), then verify it against the backup's manifest."""
    from hashed_backend.ops.backup import restore as run

    with _errors():
        report = run(_settings(database_url, data_dir), file, replace=replace)
    typer.echo(
        f"restored {file}: {len(report.chains)} agents, {report.records} records; every chain verified and every "
        "head matches the manifest (next: hashed backend migrate, then start the servers)"
    )


def retention(
    older_than_days: Annotated[float, typer.Option(min=1, help="Archive and delete records received before this.")],
    archive: Annotated[Path, typer.Option(help="Folder for the JSONL archives (keep it like your backups).")],
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking (scripts, cron).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be archived; change nothing.")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Archive each agent's records older than N days to JSONL (verified), then delete them (the head stays)."""
    from hashed_backend.ops import retention as ret
    from hashed_backend.ops.store import connect

    with _errors(), connect(_settings(database_url, data_dir).sqlalchemy_url) as conn:
        cuts = ret.plan(conn, older_than_days)
        total = sum(cut.records for cut in cuts)
        for cut in cuts:
            typer.echo(f"{cut.org_id} {cut.name} ({cut.agent_id}): seq {cut.first}..{cut.last} ({cut.records} records)")
        if dry_run or not cuts:
            typer.echo(
                f"{total} records of {len(cuts)} agents are older than {older_than_days:g} days (nothing changed)"
            )
            return
        if not yes and not typer.confirm(f"archive to {archive} and delete {total} records?", err=True):
            _fail("nothing changed (pass --yes to skip the question)", 2)
        conn.rollback()
        done = ret.apply(conn, cuts, archive)
    typer.echo(f"archived and deleted {sum(c.records for c in done)} records of {len(done)} agents into {archive}")


def register(app: typer.Typer) -> None:
    """Add the operations commands to the backend's typer app."""
    commands: list[Callable[..., None]] = [verify, backup, restore, retention]
    for command in commands:
        app.command()(command)
