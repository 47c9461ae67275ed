"""Backups of the audit store, and restores that prove what they restored.

`backup` writes the database (PostgreSQL: `pg_dump --format=custom` from one snapshot; SQLite: the online backup
API) and, beside it, a manifest: the file's SHA-256, the schema revision, the versions, and each agent's head
and record count **read from the same snapshot**. `restore` checks the file against its manifest, loads it into an
empty database (or replaces one when told to), re-verifies every chain (`ops.audit`) and compares every head with
the manifest, so a restore that lost or changed anything fails loudly.

Example:
    >>> manifest_path(Path("/b/hashed-20260101.dump")).name
    'hashed-20260101.dump.manifest.json'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from hashed_backend._version import __version__
from hashed_backend.ops.audit import StoreReport, verify_store
from hashed_backend.ops.store import connect, libpq_url, sqlite_path
from hashed_backend.settings import BackendSettings

__all__ = ["BackupError", "backup", "manifest_path", "restore"]


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


def manifest_path(dump: Path) -> Path:
    """Where the manifest of a backup file lives."""
    return dump.with_name(dump.name + ".manifest.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH: install PostgreSQL's client tools (Debian: apt-get install postgresql-client)"
        )
    return found


def _manifest(conn: Connection, kind: str, dump: Path, report: StoreReport) -> dict[str, Any]:
    return {
        "format": "hashed-backup/1",
        "database": kind,
        "file": dump.name,
        "sha256": _sha256(dump),
        "created_ns": time.time_ns(),
        "backend_version": __version__,
        "revision": MigrationContext.configure(conn).get_current_revision(),
        "records": report.records,
        "agents": report.heads(),
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def backup(settings: BackendSettings, dump: Path) -> dict[str, Any]:
    """Write a backup to `dump` and its manifest beside it; returns the manifest. Replicas may keep running."""
    if dump.exists():
        raise BackupError(f"{dump} exists: choose a new file name (backups are never overwritten)")
    dump.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite_path(settings)
    if source is not None:
        if not source.exists():
            raise BackupError(f"no database at {source}: check --data-dir or HASHED_BACKEND_DATA_DIR")
        with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(dump)) as dst:
            src.backup(dst)  # one consistent copy while writers go on (SQLite's online backup API)
        os.chmod(dump, 0o600)
        with connect(f"sqlite:///{dump}") as conn:  # the manifest describes the copy itself
            manifest = _manifest(conn, "sqlite", dump, verify_store(conn))
    else:
        manifest = _pg_backup(settings, dump)
    _write(manifest_path(dump), manifest)
    return manifest


def _pg_backup(settings: BackendSettings, dump: Path) -> dict[str, Any]:
    pg_dump = _tool("pg_dump")
    with connect(settings.sqlalchemy_url) as conn:
        # One snapshot for both: pg_dump reads exactly what the heads below were read from.
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        report = verify_store(conn)
        url = libpq_url(settings.sqlalchemy_url)
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={dump}", "--no-owner", f"--dbname={url}"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            dump.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        os.chmod(dump, 0o600)
        return _manifest(conn, "postgresql", dump, report)


def _holds_data(settings: BackendSettings) -> bool:
    with connect(settings.sqlalchemy_url, store=False) as conn:
        return "agents" in inspect(conn).get_table_names() and bool(
            conn.execute(text("SELECT 1 FROM agents LIMIT 1")).first()
        )


def restore(settings: BackendSettings, dump: Path, *, replace: bool = False) -> StoreReport:
    """Load `dump` into the configured database, then verify it against its manifest. Stop the servers first.

    Raises:
        BackupError: the file does not match its manifest, the target holds data and `replace` is False, the
            restore tool failed, or the restored store does not verify or does not match the manifest.
    """
    manifest_file = manifest_path(dump)
    if not dump.exists() or not manifest_file.exists():
        raise BackupError(f"{dump} and {manifest_file.name} are both needed (backup writes them side by side)")
    manifest = orjson.loads(manifest_file.read_bytes())
    if _sha256(dump) != manifest["sha256"]:
        raise BackupError(f"{dump} does not match its manifest's SHA-256: the file is damaged or was changed")
    target = sqlite_path(settings)
    kind = "sqlite" if target is not None else "postgresql"
    if manifest["database"] != kind:
        raise BackupError(f"a {manifest['database']} backup cannot be restored into {kind}")
    if (target is None or target.exists()) and _holds_data(settings) and not replace:
        raise BackupError("the target database holds agents already: restore into an empty one, or pass --replace")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        tmp = target.with_name(target.name + ".restoring")
        shutil.copyfile(dump, tmp)
        os.chmod(tmp, 0o600)
        tmp.replace(target)
    else:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                f"--dbname={libpq_url(settings.sqlalchemy_url)}",
                str(dump),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed (nothing was changed): {done.stderr.strip()}")
    with connect(settings.sqlalchemy_url) as conn:
        report = verify_store(conn)
    expected = manifest["agents"]
    if report.heads() != expected:
        missing = sorted(set(expected) ^ set(report.heads()))
        changed = sorted(k for k in set(expected) & set(report.heads()) if expected[k] != report.heads()[k])
        raise BackupError(
            f"the restored store does not match the manifest: agents missing {missing}, changed {changed}"
        )
    return report
