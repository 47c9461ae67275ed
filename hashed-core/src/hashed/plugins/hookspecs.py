"""The hooks a Hashed plugin may implement (pluggy project `hashed`, entry-point group `hashed`).

Only the core calls them, always with keyword arguments. Example plugin:

    from hashed.plugins import hookimpl

    @hookimpl
    def hashed_redact(call):
        return ["card.number"] if call.tool == "charge_card" else None
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hashed._core import Hashed
    from hashed.types import Decision, LedgerRecord, ToolCall

__all__ = ["hashed_adapter_install", "hashed_decide", "hashed_record_written", "hashed_redact", "hookspec"]

hookspec = pluggy.HookspecMarker("hashed")


# -- installation ------------------------------------------------------------------------------------------
@hookspec
def hashed_adapter_install(hashed: Hashed) -> None:
    """Hook a framework into `hashed`; called by `Hashed.instrument()` and `hashed run`.

    Import the framework lazily here, never at module level. Raise ImportError or FrameworkVersionError
    when the framework is absent or too old: the core logs it and goes on with the other adapters.
    Installing twice must not guard a call twice.

    Example:
        @hookimpl
        def hashed_adapter_install(hashed):
            from hashed_strands._hooks import install
            install(hashed)
    """


# -- decisions ---------------------------------------------------------------------------------------------
@hookspec
def hashed_decide(call: ToolCall, decision: Decision) -> Decision | None:
    """Return a stricter decision for `call`, or None to keep `decision`.

    Runs after the policy, before windows are counted. The core keeps the strictest answer
    (deny > pending > allow); a looser one is ignored. An exception denies the call (fail closed).

    Example:
        @hookimpl
        def hashed_decide(call, decision):
            if call.tool == "wire" and business_hours_over():
                return dataclasses.replace(decision, effect=Effect.DENY, reason="outside business hours")
    """


@hookspec
def hashed_redact(call: ToolCall) -> Iterable[str] | None:
    """Argument paths (`password`, `card.number`) to mask before the arguments are stored.

    The core masks the union of every plugin's paths and the policy's `redact` list. The digest of the
    arguments is still taken over the unmasked values. An exception fails closed: the call is denied.

    Example:
        @hookimpl
        def hashed_redact(call):
            return ["api_key"]
    """


# -- records -----------------------------------------------------------------------------------------------
@hookspec
def hashed_record_written(record: LedgerRecord) -> None:
    """Called after `record` is committed; sinks (stdout, files, OpenTelemetry) observe records here.

    In durable mode `record.sig` may still be None: it is signed in a batch moments later.
    Exceptions are logged and never reach the agent.

    Example:
        @hookimpl
        def hashed_record_written(record):
            print(record.seq, record.kind, record.body["tool"])
    """
