"""Plugins: `hookimpl` to implement the hooks in `hashed.plugins.hookspecs`, and the plugin manager."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points

import pluggy

from hashed.plugins import hookspecs

__all__ = ["PluginManager", "get_plugin_manager", "hookimpl"]

hookimpl = pluggy.HookimplMarker("hashed")
_log = logging.getLogger("hashed.plugins")


class PluginManager(pluggy.PluginManager):
    """pluggy's plugin manager for project `hashed`, counting changes so that callers never act on a stale view.

    Whatever route registers or removes a plugin (`register`, entry points, `unregister`, `set_blocked`), the
    next guarded call sees it: `version` moves, and the core looks again at which hooks have implementations.
    """

    def __init__(self) -> None:
        super().__init__("hashed")
        self.version = 0

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register `plugin` (see pluggy); takes effect at the next call."""
        registered = super().register(plugin, name)
        self.version += 1
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> object | None:
        """Remove a plugin (see pluggy); takes effect at the next call."""
        removed = super().unregister(plugin, name)
        self.version += 1
        return removed

    def set_blocked(self, name: str) -> None:
        """Block (and remove) the plugin `name` (see pluggy)."""
        super().set_blocked(name)
        self.version += 1

    def call_each(self, hook: str, **kwargs: object) -> Iterator[tuple[str, BaseException | None]]:
        """Call hook `hook` through pluggy once per plugin, so that one plugin's failure never skips the others.

        Yields each plugin's name with the exception it raised, or None.
        """
        caller = getattr(self.hook, hook)
        impls = caller.get_hookimpls()
        for impl in impls:
            alone = self.subset_hook_caller(hook, remove_plugins=[i.plugin for i in impls if i is not impl])
            try:
                alone(**kwargs)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which decides what a failure means
                yield impl.plugin_name, exc
            else:
                yield impl.plugin_name, None


def get_plugin_manager(
    *, autoload: bool = True, disabled: Iterable[str] = (), plugins: Iterable[object] = ()
) -> PluginManager:
    """A plugin manager with the hook specs, entry-point plugins (unless disabled) and `plugins` registered.

    Example:
        >>> pm = get_plugin_manager(autoload=False)
        >>> pm.hook.hashed_decide.get_hookimpls()
        []
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    if autoload:
        for entry in entry_points(group="hashed"):
            if pm.is_blocked(entry.name) or pm.has_plugin(entry.name):
                continue
            try:
                pm.register(entry.load(), name=entry.name)
            except Exception:  # noqa: BLE001 - one broken plugin never stops the others, nor the agent; it is logged
                _log.exception("hashed: plugin %r (%s) could not be loaded", entry.name, entry.value)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm
