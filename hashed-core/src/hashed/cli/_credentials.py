"""Where `hashed login` keeps the backend URL and admin key: the user's config folder, never the project.

The file is `$XDG_CONFIG_HOME/hashed/credentials.toml` (else `~/.config/hashed/credentials.toml`), mode 0600
in a 0700 folder. `HASHED_ADMIN_KEY` (with `HASHED_BACKEND_URL`) overrides it, for scripts and CI. A stored key
is only ever sent to the URL it was stored with: `HASHED_BACKEND_URL` alone does not redirect it elsewhere.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from hashed.environment_variables import HASHED_ADMIN_KEY, HASHED_BACKEND_URL
from hashed.errors import ConfigError

__all__ = [
    "DEFAULT_URL",
    "Credentials",
    "credentials_path",
    "delete_credentials",
    "load_credentials",
    "read_stored",
    "save_credentials",
]

DEFAULT_URL = "http://127.0.0.1:8400"
_FIELDS = ("url", "admin_key", "key_id", "key_name", "email", "org")


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A backend and the admin key to call it with.

    Attributes:
        url: the backend's base URL.
        admin_key: an admin API key (`hashed_admin_…`).
        source: `environment` or the file it was read from.
        key_id: the key's id when `hashed login --email` created it (`hashed logout` revokes it then).
        key_name: the key's name at the backend, when known.
        email: the person who logged in with a password, when that is how the key was made.
        org: their organisation's name, when known.
    """

    url: str
    admin_key: str = dataclasses.field(repr=False)
    source: str = "environment"
    key_id: str | None = None
    key_name: str | None = None
    email: str | None = None
    org: str | None = None

    @property
    def created_by_login(self) -> bool:
        """Whether `hashed login` made this key (so `hashed logout` may revoke it)."""
        return self.key_id is not None


def credentials_path() -> Path:
    """`$XDG_CONFIG_HOME/hashed/credentials.toml`, else `~/.config/hashed/credentials.toml`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hashed" / "credentials.toml"


def _toml_module() -> Any:
    try:
        return importlib.import_module("tomllib")
    except ModuleNotFoundError:  # Python 3.10: hashed-core depends on tomli there
        return importlib.import_module("tomli")


def _read_file(path: Path) -> Credentials | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):  # Windows has no such mode bits
        raise ConfigError(f"{path} holds an API key but others may read it: run `chmod 600 {path}`")
    toml = _toml_module()
    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, toml.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc} (run `hashed login` again to rewrite it)") from exc
    url, key = data.get("url"), data.get("admin_key")
    if not isinstance(url, str) or not isinstance(key, str) or not url or not key:
        raise ConfigError(f"{path} lacks `url` or `admin_key`: run `hashed login` again")
    extra = {name: str(data[name]) for name in _FIELDS[2:] if isinstance(data.get(name), str)}
    return Credentials(url=url, admin_key=key, source=str(path), **extra)


def read_stored() -> Credentials | None:
    """The stored login alone (ignoring `HASHED_ADMIN_KEY`), or None.

    Raises:
        ConfigError: the stored file is unreadable, malformed or readable by others.
    """
    return _read_file(credentials_path())


def load_credentials() -> Credentials | None:
    """The admin credentials: `HASHED_ADMIN_KEY` if set, else the stored login, else None.

    Raises:
        ConfigError: the stored file is unreadable, malformed or readable by others.
    """
    key = os.environ.get(HASHED_ADMIN_KEY)
    stored = read_stored() if not key else _quiet_stored()
    if key:
        url = os.environ.get(HASHED_BACKEND_URL) or (stored.url if stored else DEFAULT_URL)
        return Credentials(url=url.rstrip("/"), admin_key=key)
    return stored


def _quiet_stored() -> Credentials | None:
    try:
        return read_stored()
    except ConfigError:  # the environment's key does not need the file
        return None


def save_credentials(credentials: Credentials) -> Path:
    """Write the login to the user's config folder (folder 0700, file 0600, replaced atomically)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = ["# Written by `hashed login`; `hashed logout` removes it. Keep it private (mode 600)."]
    values = {name: getattr(credentials, name) for name in _FIELDS}
    lines += [f"{name} = {json.dumps(value)}" for name, value in values.items() if value is not None]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # a crashed earlier write; O_EXCL below never follows a planted link
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)  # in case the file existed with a wider mode
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def delete_credentials() -> Path | None:
    """Remove the stored login; returns the path removed, or None if there was none."""
    path = credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path
