"""Backend settings: `HASHED_BACKEND_*` environment variables (and `HASHED_DATABASE_URL`), then arguments.

Example:
    >>> BackendSettings(database_url="sqlite:////tmp/b.db").port
    8400
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BackendSettings", "default_data_dir"]


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/hashed`, else `~/.local/share/hashed` (the XDG base directory default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hashed"


class BackendSettings(BaseSettings):
    """Everything the backend reads from its environment, with defaults that run on a laptop."""

    model_config = SettingsConfigDict(
        env_prefix="HASHED_BACKEND_", extra="forbid", validate_default=True, populate_by_name=True
    )

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8400, ge=0, le=65535, description="Port to listen on.")
    data_dir: Path = Field(default_factory=default_data_dir, description="Folder of the embedded SQLite database.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("HASHED_DATABASE_URL"),
        description="SQLAlchemy URL; postgresql://… selects PostgreSQL (psycopg 3). Default: SQLite in data_dir.",
    )
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call with credentials.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts the backend's Ed25519 private key at rest (default: a 0600 key file in data_dir).",
    )
    old_secret_key: SecretStr | None = Field(
        default=None, description="The previous secret_key while rotating it: the key is re-encrypted at start."
    )
    allow_signup: bool = Field(default=True, description="Whether anyone may create an organisation.")
    session_days: float = Field(default=14, gt=0, description="Lifetime of a person's session.")
    cookie_secure: bool = Field(default=False, description="Send the session cookie over HTTPS only.")
    key_default_days: float = Field(default=90, gt=0, description="Expiry of a new API key when none is given.")
    approval_timeout_s: float = Field(default=900, gt=0, description="Expiry of an approval request by default.")
    approval_max_timeout_s: float = Field(default=7 * 86400, gt=0, description="Longest approval expiry allowed.")
    max_wait_s: float = Field(default=60, ge=0, description="Longest long-poll wait (`?wait=`).")
    poll_interval_s: float = Field(default=0.25, gt=0, description="How often long-polls and the live feed read.")
    signature_skew_s: int = Field(default=300, gt=0, description="Largest clock skew of a signed request.")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="Largest request body (413 beyond).")
    max_batch_records: int = Field(default=1000, gt=0, description="Largest number of records in one batch.")
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request line plus headers, in bytes (431 beyond)."
    )
    max_headers: int = Field(default=100, ge=10, description="Most request headers (431 beyond).")
    rate_per_key: float = Field(default=50, gt=0, description="Requests per second per API key (sustained).")
    burst_per_key: int = Field(default=200, gt=0, description="Requests per API key allowed in a burst.")
    auth_rate_per_ip: float = Field(default=1.0, gt=0, description="Sign-up/log-in/registration per second per IP.")
    auth_burst_per_ip: int = Field(default=20, gt=0, description="Auth requests per IP allowed in a burst.")
    forwarded_allow_ips: str = Field(
        default="",
        description="Proxies trusted for X-Forwarded-For (comma-separated addresses or networks; default: none).",
    )
    verify_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, description="Ingest verifiers.")
    log_level: str = Field(default="info", description="Log level of the JSON logs.")
    migrate_on_start: bool = Field(default=True, description="Apply migrations when the server starts.")

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("'*' cannot be used: the API sends credentials; list each allowed origin")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the async driver SQLAlchemy needs."""
        return async_url(self.database_url or f"sqlite:///{self.data_dir / 'backend.db'}")


def async_url(url: str) -> str:
    """Map `postgresql://` and `sqlite://` URLs onto their async drivers (psycopg 3, aiosqlite).

    Example:
        >>> async_url("postgresql://postgres@127.0.0.1:5432/test")
        'postgresql+psycopg://postgres@127.0.0.1:5432/test'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"{url!r} is not a database URL (postgresql://… or sqlite:///…)")
    base = scheme.split("+", 1)[0]
    if base in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError(f"unsupported database {scheme!r}: use postgresql://… or sqlite:///…")
