"""CrewAI's hook-dispatch telemetry listener: off the bus while it cannot send anything; every other listener kept."""

from __future__ import annotations

import pytest
from crewai.events.event_bus import crewai_event_bus
from crewai.events.types.hook_events import HookDispatchedEvent
from crewai.hooks import unregister_before_tool_call_hook
from crewai.telemetry import Telemetry

import hashed_crewai
from hashed_crewai import _hooks, _plugin, _telemetry


def crewai_listener_on_the_bus() -> bool:
    handlers = crewai_event_bus._sync_handlers.get(HookDispatchedEvent, frozenset())
    return any(handler.__name__ == "on_hook_dispatched" for handler in handlers)


def test_instrument_takes_crewai_telemetry_listener_off_while_telemetry_is_off(guarded):
    low, high = _telemetry.VERIFIED
    assert low <= _plugin.crewai_version() <= high, "a crewai _telemetry.py was not verified on: see VERIFIED there"
    _telemetry.restore()
    assert not Telemetry().ready  # conftest turns CrewAI's telemetry off before CrewAI is imported
    assert crewai_listener_on_the_bus()  # CrewAI as it ships
    hashed_crewai.instrument(guarded)
    assert not crewai_listener_on_the_bus()
    _telemetry.restore()
    assert crewai_listener_on_the_bus()


def test_every_other_listener_still_hears_each_dispatch(guarded, toolbox, kit, path):
    heard = []

    def listener(source, event):  # a user's own listener, run in CrewAI's thread pool
        if event.interception_point.endswith("tool_call"):
            heard.append((event.interception_point, event.outcome))

    crewai_event_bus.register_handler(HookDispatchedEvent, listener)
    try:
        llm = kit.script(path, [("read_file", {"path": "/a"})], [("delete_file", {"path": "/x"})])
        kit.crew(llm, list(toolbox.tools().values())).kickoff()
        assert crewai_event_bus.flush(timeout=30)
    finally:
        crewai_event_bus.off(HookDispatchedEvent, listener)
    assert not crewai_listener_on_the_bus()
    # the allowed call: the before hook only; the refused one: blocked, then the after hook shows the refusal (the
    # listeners run in a pool of threads: in any order)
    expected = [("pre_tool_call", "proceeded"), ("pre_tool_call", "aborted"), ("post_tool_call", "modified")]
    assert sorted(heard) == sorted(expected)
    assert kit.decisions(guarded) == [("read_file", "allow"), ("delete_file", "deny")]


@pytest.mark.parametrize("why", ["telemetry on", "crewai not verified"])
def test_the_listener_stays_where_it_may_do_something(guarded, monkeypatch, why):
    if why == "telemetry on":
        monkeypatch.setattr(Telemetry(), "ready", True)  # CrewAI's telemetry was on when it was imported
    else:
        monkeypatch.setattr(_telemetry._State, "verified", False)
    _telemetry.restore()
    hashed_crewai.instrument(guarded)
    assert crewai_listener_on_the_bus()


def test_a_failure_to_take_the_listener_off_never_stops_guarding(guarded, toolbox, kit, monkeypatch):
    def broken(event_type, handler):
        raise RuntimeError("a CrewAI whose bus changed")

    _telemetry.restore()
    unregister_before_tool_call_hook(_hooks.before_tool_call)  # so that this instrument() has to put it back
    monkeypatch.setattr(crewai_event_bus, "off", broken)
    hashed_crewai.instrument(guarded)
    monkeypatch.undo()
    assert crewai_listener_on_the_bus()
    llm = kit.script("native", [("delete_file", {"path": "/x"})])
    kit.crew(llm, list(toolbox.tools().values())).kickoff()
    assert toolbox.executed == []
    assert kit.decisions(guarded) == [("delete_file", "deny")]
