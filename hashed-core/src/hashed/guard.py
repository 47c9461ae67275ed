"""`@hashed.guard`: check, run and record a plain Python function, sync or async.

Arguments are bound to parameter names through the function's signature, so a limit on `amount` holds
whether `amount` is passed by keyword, by position, or left to its default.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hashed.types import Outcome, ToolCall

if TYPE_CHECKING:
    from hashed._core import Hashed

__all__ = ["GuardDecorator", "make_guard"]

F = TypeVar("F", bound=Callable[..., Any])
_SIMPLE = inspect.Parameter.POSITIONAL_OR_KEYWORD


class GuardDecorator(Protocol):
    """What `hashed.guard("name")` returns: a decorator that keeps the function's signature."""

    def __call__(self, fn: F, /) -> F:
        """Return the guarded function."""
        ...


class _Binder:
    """Maps a call's positional and keyword arguments to parameter names, fast for plain signatures."""

    __slots__ = ("defaults", "names", "receiver", "signature", "simple")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.simple = all(p.kind is _SIMPLE for p in params)
        self.names = tuple(p.name for p in params)
        self.defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        self.receiver = self.names[0] if self.names and self.names[0] in ("self", "cls") else None

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments by name, defaults included; TypeError exactly when the call itself would fail."""
        if self.simple and not kwargs and len(args) == len(self.names):  # the common case, on every call's path
            bound = dict(zip(self.names, args, strict=False))
        elif self.simple and len(args) <= len(self.names) and not any(n in kwargs for n in self.names[: len(args)]):
            bound = dict(zip(self.names, args, strict=False))
            bound.update(kwargs)
            missing = [n for n in self.names[len(args) :] if n not in bound]
            for name in missing:
                if name not in self.defaults:
                    self.signature.bind(*args, **kwargs)  # raises the interpreter's own TypeError
                bound[name] = self.defaults[name]
            if len(bound) != len(self.names):
                self.signature.bind(*args, **kwargs)
        else:
            call = self.signature.bind(*args, **kwargs)
            call.apply_defaults()
            bound = {}
            for name, value in call.arguments.items():
                kind = self.signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    bound.update(value)
                else:
                    bound[name] = list(value) if kind is inspect.Parameter.VAR_POSITIONAL else value
        if self.receiver is not None:
            bound.pop(self.receiver, None)
        return bound


def make_guard(hashed: Hashed, name: str | None, strict: bool | None) -> GuardDecorator:
    """The decorator behind `Hashed.guard`: refusals come back as `Refusal` (or raise in strict mode)."""

    def decorate(fn: F) -> F:
        tool = name or fn.__name__
        binder = _Binder(fn)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                call = ToolCall(tool, binder.bind(args, kwargs), framework="python")
                decision = await hashed.acheck(call)
                if not decision.allowed:
                    return hashed.refuse(decision, call, strict=strict)
                started = time.perf_counter_ns()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    hashed.record(decision, Outcome(error=exc, duration_ns=time.perf_counter_ns() - started))
                    raise
                hashed.record(decision, Outcome(result, None, time.perf_counter_ns() - started))
                return result

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            call = ToolCall(tool, binder.bind(args, kwargs), framework="python")
            decision = hashed.check(call)
            if not decision.allowed:
                return hashed.refuse(decision, call, strict=strict)
            started = time.perf_counter_ns()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                hashed.record(decision, Outcome(error=exc, duration_ns=time.perf_counter_ns() - started))
                raise
            hashed.record(decision, Outcome(result, None, time.perf_counter_ns() - started))
            return result

        return guarded  # type: ignore[return-value]

    return decorate
