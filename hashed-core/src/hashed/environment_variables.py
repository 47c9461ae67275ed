"""Every environment variable Hashed reads, in one place (each maps to a `HashedSettings` field or a switch).

`HASHED_ADMIN_KEY` is read by the `hashed` command line only (never by an agent): see docs/cli.md.
"""

from __future__ import annotations

__all__ = [
    "HASHED_ADMIN_KEY",
    "HASHED_AGENT",
    "HASHED_API_KEY",
    "HASHED_APPROVAL_POLL",
    "HASHED_APPROVAL_WAIT",
    "HASHED_BACKEND_URL",
    "HASHED_CHECKPOINT_INTERVAL",
    "HASHED_CHECKPOINT_RECORDS",
    "HASHED_DISABLED_PLUGINS",
    "HASHED_DISABLE_PLUGIN_AUTOLOAD",
    "HASHED_DURABILITY",
    "HASHED_FAIL_CLOSED",
    "HASHED_FLUSH_TIMEOUT",
    "HASHED_HOME",
    "HASHED_INSTRUMENT",
    "HASHED_KEY_FILE",
    "HASHED_KEY_PASSPHRASE",
    "HASHED_LEDGER",
    "HASHED_LEDGER_ON_ERROR",
    "HASHED_LEDGER_SYNC",
    "HASHED_POLICY",
    "HASHED_POLICY_INTERVAL",
    "HASHED_RAISE_INTERNAL_ERRORS",
    "HASHED_REQUEST_TIMEOUT",
    "HASHED_SHIP_INTERVAL",
    "HASHED_STRICT",
]

HASHED_HOME = "HASHED_HOME"
"""Folder with config.toml, policy.yaml, agent.key and ledger.db (default `.hashed`)."""
HASHED_AGENT = "HASHED_AGENT"
"""This agent's name."""
HASHED_POLICY = "HASHED_POLICY"
"""Policy file path (default `<home>/policy.yaml`)."""
HASHED_LEDGER = "HASHED_LEDGER"
"""Ledger database path (default `<home>/ledger.db`)."""
HASHED_KEY_FILE = "HASHED_KEY_FILE"
"""Encrypted agent key path (default `<home>/agent.key`)."""
HASHED_KEY_PASSPHRASE = "HASHED_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
"""Passphrase that decrypts the agent key."""
HASHED_STRICT = "HASHED_STRICT"
"""`1`: raise PolicyDenied instead of returning a refusal."""
HASHED_DURABILITY = "HASHED_DURABILITY"
"""`durable` (default; nothing lost on a crash), `immediate` (each record committed to SQLite at once) or
`background` (may lose the last milliseconds on a crash)."""
HASHED_LEDGER_SYNC = "HASHED_LEDGER_SYNC"
"""`normal` (default; survives a killed process) or `full` (survives a power cut)."""
HASHED_LEDGER_ON_ERROR = "HASHED_LEDGER_ON_ERROR"
"""`closed` (default: refuse calls when the ledger cannot be written) or `open` (run them, log the record)."""
HASHED_APPROVAL_WAIT = "HASHED_APPROVAL_WAIT"
"""Seconds a pending call waits for approval (default 0: return a pending refusal at once)."""
HASHED_APPROVAL_POLL = "HASHED_APPROVAL_POLL"
"""Seconds between approval checks while waiting."""
HASHED_BACKEND_URL = "HASHED_BACKEND_URL"
"""Backend base URL; unset means offline."""
HASHED_API_KEY = "HASHED_API_KEY"
"""Agent API key for the backend."""
HASHED_ADMIN_KEY = "HASHED_ADMIN_KEY"
"""CLI only: an admin API key for `hashed keys|agent|policy push|logs …`; overrides `hashed login`'s stored key."""
HASHED_FAIL_CLOSED = "HASHED_FAIL_CLOSED"
"""`1` (default): deny every call while no policy is known at all."""
HASHED_SHIP_INTERVAL = "HASHED_SHIP_INTERVAL"
"""Seconds between shipping rounds (default 0.5)."""
HASHED_POLICY_INTERVAL = "HASHED_POLICY_INTERVAL"
"""Seconds between policy checks at the backend (default 10)."""
HASHED_FLUSH_TIMEOUT = "HASHED_FLUSH_TIMEOUT"
"""Seconds `close()` tries to ship what is left (default 5); it never waits longer."""
HASHED_CHECKPOINT_RECORDS = "HASHED_CHECKPOINT_RECORDS"
"""Sign a checkpoint every this many new records (default 10000; 0: by time and at close only)."""
HASHED_CHECKPOINT_INTERVAL = "HASHED_CHECKPOINT_INTERVAL"
"""Seconds between checkpoints while records come in (default 60; 0: by count and at close only)."""
HASHED_REQUEST_TIMEOUT = "HASHED_REQUEST_TIMEOUT"
"""Seconds per request to the backend (default 5)."""
HASHED_DISABLE_PLUGIN_AUTOLOAD = "HASHED_DISABLE_PLUGIN_AUTOLOAD"
"""`1`: load no plugin from the `hashed` entry-point group."""
HASHED_DISABLED_PLUGINS = "HASHED_DISABLED_PLUGINS"
"""JSON list of entry-point plugin names not to load, e.g. `["crewai"]`."""
HASHED_RAISE_INTERNAL_ERRORS = "HASHED_RAISE_INTERNAL_ERRORS"
"""`1` (tests): re-raise errors that Hashed would otherwise log and survive."""
HASHED_INSTRUMENT = "HASHED_INSTRUMENT"
"""`1`: guard every installed framework at interpreter start (what `hashed run` sets)."""
