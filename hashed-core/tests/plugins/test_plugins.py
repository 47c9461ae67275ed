from __future__ import annotations

import dataclasses
import logging

import pytest

from hashed import Effect
from hashed.plugins import get_plugin_manager, hookimpl


class BusinessHours:
    """Tightens: no wires at night."""

    @hookimpl
    def hashed_decide(self, call, decision):
        if call.tool == "wire" and call.args.get("hour", 12) >= 22:
            return dataclasses.replace(decision, effect=Effect.DENY, reason="outside business hours")
        return None


class Loosener:
    @hookimpl
    def hashed_decide(self, call, decision):
        return dataclasses.replace(decision, effect=Effect.ALLOW, reason="let it through")


class SecretPaths:
    @hookimpl
    def hashed_redact(self, call):
        return ["token"]


class Sink:
    def __init__(self):
        self.seen = []

    @hookimpl
    def hashed_record_written(self, record):
        self.seen.append((record.seq, record.kind))


class BrokenSink:
    @hookimpl
    def hashed_record_written(self, record):
        raise RuntimeError("sink down")


class BrokenDecider:
    @hookimpl
    def hashed_decide(self, call, decision):
        raise RuntimeError("quota service down")


def test_a_decision_plugin_can_tighten(hashed_offline):
    hashed_offline.register_plugin(BusinessHours())
    wire = hashed_offline.guard("wire")(lambda amount, hour: "sent")
    assert wire(10, 9) == "sent"
    refused = wire(10, 23)
    assert (refused.decision.effect, refused.decision.reason) == (Effect.DENY, "outside business hours")


def test_a_decision_plugin_cannot_loosen(hashed_offline, caplog):
    hashed_offline.set_policy("rules: [{id: no-wires, tools: [wire], effect: deny}]")
    hashed_offline.register_plugin(Loosener())
    with caplog.at_level(logging.WARNING, logger="hashed"):
        refused = hashed_offline.guard("wire")(lambda: "sent")()
    assert refused.decision.effect is Effect.DENY
    assert "tried to loosen" in caplog.text


def test_a_failing_decision_plugin_fails_closed(tmp_path):
    from hashed.testing import make_hashed

    with make_hashed(tmp_path / "h", raise_internal_errors=False) as hashed:
        hashed.register_plugin(BrokenDecider())
        refused = hashed.guard("wire")(lambda: "sent")()
        assert refused.decision.effect is Effect.DENY
        assert "quota service down" in refused.decision.reason


def test_redaction_plugins_mask_arguments(hashed_offline):
    hashed_offline.register_plugin(SecretPaths())
    hashed_offline.guard("call_api")(lambda url, token: "ok")("https://x", "s3cr3t")
    hashed_offline.flush()
    [decision, _] = hashed_offline.ledger.records()
    assert decision.body["args"] == {"url": "https://x", "token": "[REDACTED]"}


def test_sinks_see_every_committed_record(hashed_offline):
    sink = Sink()
    hashed_offline.register_plugin(sink)
    hashed_offline.guard("ping")(lambda: "pong")()
    hashed_offline.flush()  # sinks hear of a record once it is committed to the ledger
    assert sink.seen == [(1, "decision"), (2, "outcome")]


def test_a_failing_sink_never_reaches_the_agent(tmp_path, caplog):
    from hashed.testing import make_hashed

    with make_hashed(tmp_path / "h", raise_internal_errors=False) as hashed:
        hashed.register_plugin(BrokenSink())
        with caplog.at_level(logging.ERROR, logger="hashed"):
            assert hashed.guard("ping")(lambda: "pong")() == "pong"
            hashed.flush()
        assert "sink down" in caplog.text


def test_blocked_plugins_are_not_registered():
    pm = get_plugin_manager(autoload=False, disabled=["sink"])
    assert pm.register(Sink(), name="sink") is None
    assert pm.hook.hashed_record_written.get_hookimpls() == []


def test_instrument_runs_every_adapter_and_survives_a_broken_one(hashed_offline, caplog):
    calls = []

    class Good:
        @hookimpl
        def hashed_adapter_install(self, hashed):
            calls.append("good")

    class Missing:
        @hookimpl
        def hashed_adapter_install(self, hashed):
            raise ImportError("no module named crewai")

    hashed_offline.register_plugin(Good(), name="good")
    hashed_offline.register_plugin(Missing(), name="missing")
    with caplog.at_level(logging.INFO, logger="hashed"):
        assert hashed_offline.instrument() is hashed_offline
    assert calls == ["good"]
    assert "adapter missing skipped: no module named crewai" in caplog.text


@pytest.mark.parametrize("hook", ["hashed_adapter_install", "hashed_decide", "hashed_redact", "hashed_record_written"])
def test_every_hook_spec_is_documented(hook):
    from hashed.plugins import hookspecs

    assert getattr(hookspecs, hook).__doc__.strip()


# -- hooks go through pluggy, and every route of registering takes effect at once (issue #13) -----------------


class TerseDenier:
    """An implementation taking fewer arguments than the spec, which pluggy allows."""

    @hookimpl
    def hashed_decide(self, call):
        return dataclasses.replace(_ALLOWED, effect=Effect.DENY, reason="no calls today") if call.tool else None


_ALLOWED = __import__("hashed").Decision(Effect.ALLOW, "", None, "", "")


@pytest.mark.parametrize("route", ["plugins.register", "register_plugin"])
def test_a_plugin_registered_after_start_acts_from_the_next_call(hashed_offline, route):
    ping = hashed_offline.guard("ping")(lambda: "pong")
    assert ping() == "pong"  # the first call: no plugin yet
    if route == "plugins.register":
        hashed_offline.plugins.register(TerseDenier())
    else:
        hashed_offline.register_plugin(TerseDenier())
    refused = ping()
    assert (refused.decision.effect, refused.decision.reason) == (Effect.DENY, "no calls today")
    hashed_offline.plugins.unregister(name=hashed_offline.plugins.list_name_plugin()[-1][0])
    assert ping() == "pong"


def test_one_failing_sink_never_silences_the_others(tmp_path, caplog):
    from hashed.testing import make_hashed

    with make_hashed(tmp_path / "h", raise_internal_errors=False) as hashed:
        first, last = Sink(), Sink()
        hashed.register_plugin(first)
        hashed.register_plugin(BrokenSink())
        hashed.register_plugin(last)
        with caplog.at_level(logging.ERROR, logger="hashed"):
            hashed.guard("ping")(lambda: "pong")()
            hashed.flush()
        assert first.seen == last.seen == [(1, "decision"), (2, "outcome")]
        failures = [r for r in caplog.records if "record sink" in r.getMessage()]
        assert [str(r.exc_info[1]) for r in failures if r.exc_info] == ["sink down", "sink down"]


def test_an_adapter_taking_no_arguments_is_installed(hashed_offline):
    calls = []

    class Minimal:
        @hookimpl
        def hashed_adapter_install(self):
            calls.append("installed")

    hashed_offline.register_plugin(Minimal())
    hashed_offline.instrument()
    assert calls == ["installed"]
