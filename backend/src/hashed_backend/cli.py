"""`hashed backend serve | migrate | verify | backup | restore | retention` (the core CLI mounts this typer app).

Also `python -m hashed_backend`. The operations commands live in `hashed_backend.ops.commands`.

Example:
    >>> from typer.testing import CliRunner
    >>> "serve" in CliRunner().invoke(app, ["--help"]).output
    True
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Annotated

import typer

from hashed_backend.ops.commands import register as register_operations

if TYPE_CHECKING:
    from hashed_backend.settings import BackendSettings

__all__ = ["app", "main", "migrate", "serve"]

app = typer.Typer(help="The Hashed backend: collect, verify and store agent ledgers; serve policies and approvals.")


def _environment(database_url: str | None, data_dir: str | None) -> None:
    # Options become the environment variables the settings read, so that uvicorn workers (separate
    # processes building the app from `create_app`) see them too.
    if database_url is not None:
        os.environ["HASHED_DATABASE_URL"] = database_url
    if data_dir is not None:
        os.environ["HASHED_BACKEND_DATA_DIR"] = data_dir


DatabaseUrl = Annotated[str | None, typer.Option(help="postgresql://… or sqlite:///… (else HASHED_DATABASE_URL).")]
DataDir = Annotated[str | None, typer.Option(help="Folder of the embedded SQLite database.")]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8400).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (they share the database).")] = 1,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Start the backend (migrations are applied first)."""
    import uvicorn

    from hashed_backend.http_limits import HEADER_BYTES_ENV, BoundedHttpTools
    from hashed_backend.jsonlog import log_config
    from hashed_backend.settings import BackendSettings

    _environment(database_url, data_dir)
    _check_or_exit(backend_key=True)
    if host is not None:
        os.environ["HASHED_BACKEND_HOST"] = host
    if port is not None:
        os.environ["HASHED_BACKEND_PORT"] = str(port)
    settings = BackendSettings()
    os.environ[HEADER_BYTES_ENV] = str(settings.max_header_bytes)  # each worker's protocol reads it
    if workers > 1 and settings.migrate_on_start:  # once, before the workers start (they then find it current)
        migrate(database_url=None, data_dir=None)
    uvicorn.run(
        "hashed_backend.main:create_app",
        factory=True,
        http=BoundedHttpTools,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=log_config(settings.log_level),
        access_log=False,
        # X-Forwarded-For is believed only from the configured proxies (issue #15: any client could dodge the
        # per-IP limits); with none configured the connection's own address is the client.
        proxy_headers=bool(settings.forwarded_allow_ips.strip()),
        forwarded_allow_ips=settings.forwarded_allow_ips.strip() or None,
        timeout_graceful_shutdown=5,
    )


@app.command()
def migrate(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Apply the shipped migrations to the database, then exit."""
    from hashed_backend.db.migrate import current_revision, upgrade
    from hashed_backend.db.session import Database

    _environment(database_url, data_dir)
    settings = _check_or_exit(backend_key=False)

    async def run() -> str | None:
        db = Database(settings.sqlalchemy_url)
        try:
            await upgrade(db)
            return await current_revision(db)
        finally:
            await db.dispose()

    revision = asyncio.run(run())
    typer.echo(f"database at migration {revision}")


def _check_or_exit(*, backend_key: bool) -> BackendSettings:
    """The settings, once the database they name answers; else one line on stderr and exit status 2."""
    from pydantic import ValidationError

    from hashed_backend.settings import BackendSettings
    from hashed_backend.startup import StartupError, check_database

    try:
        settings = BackendSettings()
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        check_database(settings, backend_key=backend_key)
    except ValidationError as exc:
        issue = exc.errors()[0]
        where = ".".join(str(part) for part in issue["loc"])
        typer.echo(f"hashed backend: setting {where}: {issue['msg']} (HASHED_BACKEND_* variables)", err=True)
        raise typer.Exit(2) from None
    except (StartupError, OSError) as exc:
        typer.echo(f"hashed backend: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


register_operations(app)


def main(args: list[str] | None = None) -> None:
    """Entry point of `hashed-backend` and `python -m hashed_backend` (no arguments: serve)."""
    app(args=args)
