"""CrewAI's telemetry listener for hook dispatches, taken off its event bus while it cannot send anything (#18).

For every dispatch to a non-empty tool-hook list (so, for the before hook Hashed registers, on every tool call),
CrewAI emits a `HookDispatchedEvent` on its event bus, and its own `EventListener` always listens for it
(`on_hook_dispatched`, which sends a feature-usage span). With CrewAI's telemetry off when CrewAI was imported
(`CREWAI_DISABLE_TELEMETRY`, `OTEL_SDK_DISABLED` or `CREWAI_DISABLE_TRACKING`), `Telemetry().ready` is False for
good (only `Telemetry.__init__`, which runs once, sets it), and that listener returns at once. Yet a listener on
the bus turns each emission into a hand-off to the bus's thread pool: ≈ 20–30 of the ≈ 45–55 µs CrewAI charges for
the hook in a tight loop, and more on a busy machine, where that thread competes for the GIL.

`detach()` takes that one listener off with the bus's own `off()`, and only then: the event is still built, recorded
in CrewAI's runtime state, streamed, and handed to every other listener (a user's, CrewAI's tracing). Nothing of
CrewAI is replaced. The listener is a closure CrewAI keeps only in the bus's table of handlers, where it is found
by its module and name, on the CrewAI versions where all of the above was read and tested (`VERIFIED`); on any
other, nothing is done and the hook costs what CrewAI charges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crewai.events.event_bus import crewai_event_bus
from crewai.events.types.hook_events import HookDispatchedEvent
from crewai.telemetry import Telemetry

from hashed_crewai._plugin import crewai_version

__all__ = ["VERIFIED", "detach", "restore"]

# Inclusive. Before raising the top: check that `Telemetry.ready` is still set only in `Telemetry.__init__`, that
# `on_hook_dispatched` still does nothing but telemetry, and that the bus still keeps `_sync_handlers`.
VERIFIED = ((1, 15, 29), (1, 15, 30))
_LISTENER = ("crewai.events.event_listener", "EventListener.setup_listeners.<locals>.on_hook_dispatched")


class _State:
    verified = VERIFIED[0] <= crewai_version() <= VERIFIED[1]
    detached: list[Callable[..., Any]] = []


def detach() -> bool:
    """Take CrewAI's hook-dispatch telemetry listener off the bus if it can never send anything; whether it was."""
    if not _State.verified:
        return False
    try:
        if Telemetry().ready:
            return False
        handlers = getattr(crewai_event_bus, "_sync_handlers", {}).get(HookDispatchedEvent, frozenset())
        found = [h for h in handlers if (getattr(h, "__module__", ""), getattr(h, "__qualname__", "")) == _LISTENER]
        for listener in found:
            crewai_event_bus.off(HookDispatchedEvent, listener)
            _State.detached.append(listener)
    except Exception:  # noqa: BLE001 - only a saving: guarding goes on with the listener where CrewAI put it
        return False
    return bool(found)


def restore() -> None:
    """Put back what `detach` took off: CrewAI as it ships (for measuring CrewAI's own charge, and for tests)."""
    while _State.detached:
        crewai_event_bus.register_handler(HookDispatchedEvent, _State.detached.pop())
