"""The only helpers an adapter may use besides `Hashed.check`, `Hashed.record` and `Hashed.refuse`.

An adapter translates its framework's events into a `ToolCall`, asks `check`, denies the framework's way with
`decision.refusal_message` (or lets `refuse`/`raise_if_strict` raise `PolicyDenied`), and hands the result to
`record`. It never evaluates policy, counts, signs, stores, ships or words a refusal itself.

Example:
    from hashed.adapters import current, outcome, started, tool_call

    def before(event):
        hashed = current()
        decision = hashed.check(tool_call("send_email", event.args, framework="myfw", call_id=event.id))
        if not decision.allowed:
            hashed.raise_if_strict(decision)
            return decision.refusal_message
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from hashed._core import current
from hashed.errors import FrameworkVersionError, PolicyDenied
from hashed.types import Decision, Effect, Outcome, Refusal, ToolCall

__all__ = [
    "Decision",
    "Effect",
    "FrameworkVersionError",
    "Outcome",
    "PolicyDenied",
    "Refusal",
    "ToolCall",
    "current",
    "outcome",
    "started",
    "tool_call",
    "when_imported",
]


def tool_call(
    tool: str,
    args: Any,
    *,
    framework: str,
    agent: str | None = None,
    run_id: object = None,
    call_id: object = None,
    parent_id: object = None,
) -> ToolCall:
    """A `ToolCall` from whatever a framework hands over: ids become strings, non-mapping input `{"input": …}`.

    Example:
        >>> tool_call("search", "weather in Oslo", framework="langchain", run_id=7).args
        {'input': 'weather in Oslo'}
    """
    mapping = dict(args) if isinstance(args, Mapping) else ({} if args is None else {"input": args})
    return ToolCall(
        tool,
        mapping,
        agent=agent,
        framework=framework,
        run_id=None if run_id is None else str(run_id),
        call_id=None if call_id is None else str(call_id),
        parent_id=None if parent_id is None else str(parent_id),
    )


def started() -> int:
    """A start mark for `outcome` (monotonic nanoseconds)."""
    return time.perf_counter_ns()


def outcome(start: int, result: Any = None, error: BaseException | None = None) -> Outcome:
    """The `Outcome` of a tool that began at `start` (from `started()`).

    Example:
        >>> outcome(started(), result="ok").ok
        True
    """
    return Outcome(result=result, error=error, duration_ns=time.perf_counter_ns() - start)


# -- lazy patching: hook a framework right after it is imported, never importing it early ------------------

_patches: dict[str, list[Callable[[ModuleType], None]]] = {}
_patch_lock = threading.Lock()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of watched modules so their patches run right after the module body executes."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _patches:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _run_patches(fullname, module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_finder = _PostImportFinder()


def _run_patches(name: str, module: ModuleType) -> None:
    with _patch_lock:
        patches = _patches.pop(name, [])
    for patch in patches:
        patch(module)


def when_imported(module: str, patch: Callable[[ModuleType], None]) -> None:
    """Run `patch(module)` once `module` is imported: now if it already is, else right after its import.

    Example:
        >>> import json
        >>> when_imported("json", lambda m: print("patched", m.__name__))
        patched json
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        patch(loaded)
        return
    with _patch_lock:
        _patches.setdefault(module, []).append(patch)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    _ = importlib.util  # keep the finder's import machinery imported before any framework import
