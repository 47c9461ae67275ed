"""Settings: `.hashed/config.toml`, overridden by `HASHED_*` environment variables, overridden by arguments.

Every variable is listed in `hashed.environment_variables`. Nothing here needs a backend: with no
`backend_url`, Hashed runs fully offline.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from hashed.errors import ConfigError

__all__ = ["HashedSettings"]


class HashedSettings(BaseSettings):
    """Everything configurable, with its default.

    Example:
        >>> HashedSettings(home="/tmp/x", agent="billing-bot").policy_path
        PosixPath('/tmp/x/policy.yaml')
    """

    model_config = SettingsConfigDict(env_prefix="HASHED_", extra="forbid", validate_default=True)
    _toml: ClassVar[Path | None] = None
    _toml_lock: ClassVar[threading.Lock] = threading.Lock()

    home: Path = Field(default=Path(".hashed"), description="Folder holding config, policy, key and ledger.")
    agent: str = Field(default="agent", min_length=1, description="This agent's name, matched by `agents` globs.")
    policy: Path | None = Field(default=None, description="Policy file (default: <home>/policy.yaml).")
    ledger: Path | None = Field(default=None, description="Ledger database (default: <home>/ledger.db).")
    key_file: Path | None = Field(default=None, description="Encrypted agent key (default: <home>/agent.key).")
    key_passphrase: SecretStr | None = Field(default=None, description="Passphrase of the agent key.")
    strict: bool = Field(default=False, description="Raise PolicyDenied instead of returning a refusal.")
    durability: Literal["durable", "immediate", "background"] = Field(
        default="durable",
        description="durable: nothing is lost when the process is killed; each record is in this process's "
        "memory-mapped journal before the call runs/returns, and a writer thread commits it to the ledger; "
        "immediate: as safe, each record committed to the SQLite ledger before the call goes on (slower; other "
        "processes see it at once; also what ledger_sync=full uses); "
        "background: a writer thread commits in groups (may lose the last milliseconds on a crash).",
    )
    ledger_sync: Literal["normal", "full"] = Field(
        default="normal", description="SQLite synchronous level: normal survives a killed process, full a power cut."
    )
    ledger_on_error: Literal["closed", "open"] = Field(
        default="closed", description="When the ledger cannot be written: refuse calls, or run them and log the record."
    )
    approval_wait: float = Field(
        default=0.0, ge=0, description="Seconds a pending call waits for a person; 0 returns a pending refusal at once."
    )
    approval_poll: float = Field(default=0.2, gt=0, description="Seconds between checks while waiting for approval.")
    backend_url: str | None = Field(default=None, description="Hashed backend to sync policy and ship records to.")
    api_key: SecretStr | None = Field(default=None, description="Agent API key for the backend.")
    fail_closed: bool = Field(default=True, description="Deny every call while no policy is known at all.")
    ship_interval: float = Field(default=0.5, gt=0, description="Seconds between shipping rounds to the backend.")
    policy_interval: float = Field(default=10.0, gt=0, description="Seconds between policy checks at the backend.")
    flush_timeout: float = Field(default=5.0, ge=0, description="Seconds close() tries to ship what is left.")
    checkpoint_records: int = Field(
        default=10_000, ge=0, description="Sign a checkpoint every this many records (0: by time and at close only)."
    )
    checkpoint_interval: float = Field(
        default=60.0, ge=0, description="Seconds between checkpoints while records come in (0: by count and at close)."
    )
    request_timeout: float = Field(default=5.0, gt=0, description="Seconds per request to the backend.")
    disable_plugin_autoload: bool = Field(default=False, description="Do not load plugins from entry points.")
    disabled_plugins: list[str] = Field(default_factory=list, description="Entry-point plugins not to load.")
    raise_internal_errors: bool = Field(default=False, description="Tests: re-raise errors Hashed would log.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then HASHED_* variables, then config.toml (dotenv and secret files are not read)."""
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if cls._toml is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=cls._toml),)
        return sources

    @classmethod
    def load(cls, home: str | Path | None = None, **overrides: Any) -> HashedSettings:
        """Settings for the project at `home` (default: $HASHED_HOME or ./.hashed), reading its config.toml.

        Raises:
            ConfigError: config.toml or a HASHED_* variable holds a bad value (the message names it).
        """
        folder = Path(home if home is not None else os.environ.get("HASHED_HOME", ".hashed"))
        toml = folder / "config.toml"
        values = {k: v for k, v in overrides.items() if v is not None}
        try:
            with cls._toml_lock:
                cls._toml = toml if toml.is_file() else None
                try:
                    return cls(home=folder, **values)
                finally:
                    cls._toml = None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise ConfigError(
                f"bad settings ({problems}); check {toml} and the HASHED_* environment variables"
            ) from None

    @property
    def policy_path(self) -> Path:
        """Where the policy file is."""
        return self.policy or self.home / "policy.yaml"

    @property
    def ledger_path(self) -> Path:
        """Where the ledger database is."""
        return self.ledger or self.home / "ledger.db"

    @property
    def key_path(self) -> Path:
        """Where the encrypted agent key is."""
        return self.key_file or self.home / "agent.key"

    @property
    def passphrase_path(self) -> Path:
        """Development fallback for the key passphrase (`hashed init` writes it, git ignores it)."""
        return self.home / "key.passphrase"

    @property
    def api_key_path(self) -> Path:
        """Development home of the agent API key (`hashed init --connect` writes it, git ignores it)."""
        return self.home / "api.key"

    def agent_api_key(self) -> str | None:
        """The agent API key: $HASHED_API_KEY (or config), else the development file, else None."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        try:
            return self.api_key_path.read_text().strip() or None
        except OSError:
            return None

    def passphrase(self) -> str | None:
        """The key passphrase: $HASHED_KEY_PASSPHRASE, else the development file, else None."""
        if self.key_passphrase is not None:
            return self.key_passphrase.get_secret_value()
        try:
            return self.passphrase_path.read_text().strip() or None
        except OSError:
            return None
