"""The only helpers an adapter may use besides `Hashed`: the one guarded-execution path and lazy patching.

An adapter translates its framework's events and hands the core what it has: the tool's name, how the tool
reads its input (`ToolSignature`, or a function returning the bound arguments), the raw input, the framework's
ids, and the continuation that runs the tool. `execute` (or `aexecute`) binds the arguments as the tool body
will receive them, decides, runs the continuation at most once if allowed, records the outcome or the error,
and returns the result or the refusal, which the adapter words the framework's way with
`decision.refusal_message`. Frameworks that split a call into "before" and "after" events use `begin` and
`Execution.finish`. An adapter that decides in a framework's tool base class wraps the user's classes that
override that method with `Overrides`. An adapter never evaluates policy, counts, signs, stores, ships or words a
refusal itself.

Example:
    from hashed.adapters import ToolSignature, current, execute

    def on_tool_call(event, run_tool):
        return execute(
            current(), event.tool_name, run_tool,
            signature=ToolSignature.of(event.tool_function), input=event.arguments,
            framework="myfw", call_id=event.id,
            refuse=lambda decision, call: MyFrameworkError(decision.refusal_message),
        )
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from hashed._core import current
from hashed._execution import NO_INPUT, Execution, abegin, aexecute, begin, execute
from hashed._overrides import Overrides
from hashed._random import token16
from hashed._signature import ToolSignature
from hashed.errors import FrameworkVersionError, PolicyDenied
from hashed.types import Decision, Effect, Outcome, Refusal, ToolCall

__all__ = [
    "NO_INPUT",
    "Decision",
    "Effect",
    "Execution",
    "FrameworkVersionError",
    "Outcome",
    "Overrides",
    "PolicyDenied",
    "Refusal",
    "ToolCall",
    "ToolSignature",
    "abegin",
    "aexecute",
    "begin",
    "current",
    "execute",
    "outcome",
    "started",
    "unique_id",
    "when_imported",
]


def unique_id() -> uuid.UUID:
    """A UUID never handed out twice in this process, made without a system call (unlike `uuid.uuid4()`).

    For a run id the adapter gives the framework, so that the record and the framework's trace name the same run.
    Unique, not secret: it carries the core's per-process random prefix and a counter.

    Example:
        >>> unique_id() != unique_id()
        True
    """
    return uuid.UUID(hex=token16())


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
