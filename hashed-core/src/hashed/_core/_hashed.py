"""`Hashed`'s life cycle: opening a project, reopening in a forked child, rotating the key, flushing, closing.

Opening reads the settings, the key, the policy, the ledger and the plugins, in that order.

The rest of the class is written beside this module: the decision path (`_choke_point.py`), the policy and
plugins (`_policy_and_plugins.py`) and approvals (`_approvals.py`).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hashed._connect import backend_client, initial_engine, start_checkpoint_timer, start_shipper
from hashed._core._choke_point import ChokePoint
from hashed._decisions import RECIPES
from hashed._guard import GuardDecorator, make_guard
from hashed._rotation import resolve_key_file, rotate
from hashed._unrecorded import Unrecorded
from hashed.config import HashedSettings
from hashed.errors import ConfigError, FrameworkVersionError, IdentityError
from hashed.identity import Identity, load_identity
from hashed.ledger import Ledger, VerifyReport
from hashed.ledger._approvals import ApprovalStore
from hashed.plugins import get_plugin_manager
from hashed.policy import Policy

__all__ = ["Hashed"]

_log = logging.getLogger("hashed")
_open: weakref.WeakSet[Hashed] = weakref.WeakSet()
F = TypeVar("F", bound=Callable[..., Any])


class Hashed(ChokePoint):
    """Policy, identity and ledger of one agent. Works offline; thread-safe; usable from several processes.

    Args:
        home: the project folder (default: $HASHED_HOME or `./.hashed`).
        settings: complete settings; otherwise read from `home`'s config.toml and HASHED_* variables.
        identity: the agent key; otherwise decrypted from the key file.
        policy: a `Policy`, YAML text, or a path; otherwise the policy file.
        clock: nanoseconds since the epoch (tests freeze it).
        plugins: plugin objects to register besides the entry-point ones.
        **overrides: any `HashedSettings` field, e.g. `strict=True`, `durability="background"`.

    Example:
        >>> from hashed import Hashed
        >>> hashed = Hashed()                                  # doctest: +SKIP
        >>> @hashed.guard("transfer_money")                    # doctest: +SKIP
        ... def transfer_money(to: str, amount: float) -> str: ...
    """

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        settings: HashedSettings | None = None,
        identity: Identity | None = None,
        policy: Policy | str | Path | None = None,
        clock: Callable[[], int] | None = None,
        plugins: Iterable[object] = (),
        **overrides: Any,
    ) -> None:
        self.settings = settings if settings is not None else HashedSettings.load(home, **overrides)
        s = self.settings
        if identity is None and not s.home.is_dir():
            raise ConfigError(f"no Hashed project at {s.home.resolve()}: run `hashed init` there, or set HASHED_HOME")
        self._clock = clock or time.time_ns
        if identity is None:
            resolve_key_file(s.key_path, s.ledger_path)
            identity = load_identity(s.key_path, s.passphrase())
        self.identity = identity
        self._client = backend_client(s, lambda: self.identity)
        self._engine, self.policy_source = initial_engine(s, policy, self._client)
        self._pm = get_plugin_manager(
            autoload=not s.disable_plugin_autoload, disabled=s.disabled_plugins, plugins=plugins
        )
        self._pm_version = -1  # the plugin manager's version the hook flags below were read at
        self._forked = False  # set in a forked child: the ledger's threads, journal and connection are the parent's
        self._unrecorded = Unrecorded()
        self._open_ledger()
        self._closed = False
        _open.add(self)

    def _open_ledger(self, *, forked: bool = False) -> None:
        s = self.settings
        # A forked worker (multiprocessing) is often ended by a signal (Pool.terminate): in background mode its
        # records go to a journal of its own too, which survives that and which the parent commits when it closes.
        background = s.durability == "background"
        self.ledger = Ledger(
            s.ledger_path,
            self.identity,
            clock=self._clock,
            background=background,
            # Durable mode keeps each record in this process's journal (a memory copy, as safe against a killed
            # process as a SQLite commit); a power cut (ledger_sync=full) needs an fsync per record, so SQLite.
            journal=(s.durability == "durable" and s.ledger_sync == "normal") or (forked and background),
            synchronous=s.ledger_sync.upper(),
            on_write_error=s.ledger_on_error,
            recipes=RECIPES,
        )
        ledger = self.ledger
        self._checkpoints = start_checkpoint_timer(ledger.db, lambda: ledger.identity, s)
        self.approvals = ApprovalStore(self.ledger.db, self._clock)
        self.shipper = start_shipper(s, self._client, self.ledger, self._apply_backend_policy, self._clock)
        self._refresh_hooks()

    def _reopen(self) -> None:
        """In a forked child, at its first use: a ledger of its own (connection, journal, threads), same chain.

        What the parent made stays the parent's: its queue, journal and connection are left untouched here (kept
        referenced, so that nothing of theirs is ever closed from this process). Does nothing in the process that
        created this `Hashed`; the guarded call's path checks `_forked` itself, to save the call.
        """
        with _fork_lock:
            if not self._forked:  # never forked, or another thread of the child reopened it already
                return
            _inherited.append((self.ledger, self.approvals, self.shipper, self._client))
            self._forked = False
            self._unrecorded = Unrecorded()  # the parent writes its own
            self._client = backend_client(self.settings, lambda: self.identity)  # the parent's sockets stay its own
            self._open_ledger(forked=True)
            mp_util = sys.modules.get("multiprocessing.util")
            if mp_util is not None:  # a multiprocessing worker ends with os._exit: atexit never runs, these do
                mp_util.Finalize(None, self.close, exitpriority=100)

    def instrument(self) -> Hashed:
        """Guard every framework whose adapter is installed, and make this the process's default instance."""
        from hashed import _core  # the process's default instance lives in the package (`current`)

        with _core._default_lock:
            _core._default = self
        for plugin, error in self._pm.call_each("hashed_adapter_install", hashed=self):
            if isinstance(error, (ImportError, FrameworkVersionError)):
                _log.info("hashed: adapter %s skipped: %s", plugin, error)
            elif error is not None:  # one adapter failing never stops the others
                if self.settings.raise_internal_errors:
                    raise error
                _log.error("hashed: adapter %s failed to install", plugin, exc_info=error)
        return self

    def guard(self, name: str | F | None = None, *, strict: bool | None = None) -> Any:
        """Decorate a function (sync or async) so every call is checked and recorded; see `hashed.guard`."""
        if callable(name):
            return make_guard(self, None, strict)(name)
        decorator: GuardDecorator = make_guard(self, name, strict)
        return decorator

    def rotate_key(self) -> Identity:
        """Replace the agent key: the old key signs the new one into the ledger; the key file is updated.

        Raises:
            IdentityError: no passphrase to encrypt the new key with.
        """
        passphrase = self.settings.passphrase()
        if not passphrase:
            raise IdentityError("set HASHED_KEY_PASSPHRASE to encrypt the new agent key")
        self._reopen()
        self.identity = rotate(self.ledger, self.settings.agent, self.settings.key_path, passphrase)
        return self.identity

    @property
    def public_key(self) -> str:
        """The agent's public key (hex): its identity in the ledger and at the backend."""
        return self.identity.public_key

    def verify(self) -> VerifyReport:
        """Verify this agent's whole ledger (after sealing what is waiting to be signed)."""
        self._reopen()
        self.ledger.flush()
        return self.ledger.verify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record is committed and signed (False if some still cannot be)."""
        self._reopen()
        done = self.ledger.flush(timeout)
        if self._unrecorded.waiting:  # outcomes a failed write left behind: the ledger may take them now
            done = self._unrecorded.try_write(self.ledger) and self.ledger.flush(timeout)
        return done

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit and sign what is queued, ship what the backend will take within `flush_timeout`, close.

        Idempotent; runs at interpreter exit too. Never hangs on a dead backend: unshipped records stay in the
        ledger and go out on the next start.
        """
        if self._closed:
            return
        self._closed = True
        _open.discard(self)
        if self._forked:  # a forked child that never used it: the ledger, journal and threads are the parent's
            return
        self.ledger.flush(timeout)
        if self._unrecorded.try_write(self.ledger):
            self.ledger.flush(timeout)
        if self.shipper is not None:
            self.shipper.close(self.settings.flush_timeout)
        if self._checkpoints is not None:  # stopped first: the ledger's close signs the last checkpoint
            self._checkpoints.close()
        self.ledger.close(timeout)

    def __enter__(self) -> Hashed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_fork_lock = threading.Lock()
_inherited: list[object] = []  # a forked child's copies of its parent's ledgers: never closed from the child


def _after_fork_in_child() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()  # the parent may have held it while forking
    for instance in list(_open):
        instance._forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_all() -> None:
    for instance in list(_open):
        instance.close(timeout=5.0)
