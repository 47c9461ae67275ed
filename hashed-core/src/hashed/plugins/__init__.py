"""Plugins: `hookimpl` to implement the hooks in `hashed.plugins.hookspecs`, and the plugin manager."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

import pluggy

from hashed.plugins import hookspecs

__all__ = ["get_plugin_manager", "hookimpl"]

hookimpl = pluggy.HookimplMarker("hashed")
_log = logging.getLogger("hashed.plugins")


def get_plugin_manager(
    *, autoload: bool = True, disabled: Iterable[str] = (), plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A plugin manager with the hook specs, entry-point plugins (unless disabled) and `plugins` registered.

    Example:
        >>> pm = get_plugin_manager(autoload=False)
        >>> pm.hook.hashed_decide.get_hookimpls()
        []
    """
    pm = pluggy.PluginManager("hashed")
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
