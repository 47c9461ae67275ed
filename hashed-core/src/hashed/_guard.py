"""`@guard`: check, run and record a plain Python function, sync or async, through the one execution path.

Arguments are bound to parameter names through the function's signature (`ToolSignature`), so a limit on
`amount` holds whether `amount` is passed by keyword, by position, or left to its default.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hashed._execution import Execution, tool_call
from hashed._signature import ToolSignature
from hashed.types import ToolCall

if TYPE_CHECKING:
    from hashed._core import Hashed

__all__ = ["GuardDecorator", "guard", "make_guard"]

F = TypeVar("F", bound=Callable[..., Any])


class GuardDecorator(Protocol):
    """What `guard("name")` returns: a decorator that keeps the function's signature."""

    def __call__(self, fn: F, /) -> F:
        """Return the guarded function."""
        ...


def make_guard(hashed: Hashed | None, name: str | None, strict: bool | None) -> GuardDecorator:
    """The decorator behind `Hashed.guard` and `hashed.guard`.

    `hashed` is the instance to ask; None asks the process's default instance (`hashed.current()`) at each call,
    so that decorating at import time opens nothing. Refusals come back as `Refusal` (or raise in strict mode).
    A call whose arguments do not fit the function raises the function's own TypeError, unrecorded: it could
    not have run either.
    """

    def decorate(fn: F) -> F:
        tool = name or fn.__name__
        signature = ToolSignature.of(fn)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Hashed, ToolCall]:
            guard = hashed if hashed is not None else _current()
            return guard, tool_call(tool, signature=signature, args=args, kwargs=kwargs)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                guard, call = start(args, kwargs)
                execution = Execution(guard, call, await guard.acheck(call))
                return await execution.arun(fn, args, kwargs, strict=strict)

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            guard, call = start(args, kwargs)
            return Execution(guard, call, guard.check(call)).run(fn, args, kwargs, strict=strict)

        return guarded  # type: ignore[return-value]

    return decorate


def _current() -> Hashed:
    from hashed._core import current  # at call time: the core module imports this one

    return current()


def guard(name: str | F | None = None, *, strict: bool | None = None) -> Any:
    """Guard a function (sync or async) with the process's default `Hashed`, looked up at each call.

    Like `Hashed.guard`, for code that does not hold an instance: `hashed.instrument()` or the first guarded
    call sets the default up from the project's settings (`.hashed/`, `HASHED_*`).

    Example:
        import hashed

        @hashed.guard("transfer_money")
        def transfer_money(to: str, amount: float) -> str: ...

        @hashed.guard                                   # the tool's name is the function's
        def delete_file(path: str) -> None: ...
    """
    if callable(name):
        return make_guard(None, None, strict)(name)
    return make_guard(None, name, strict)
